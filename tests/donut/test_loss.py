"""The task computes Donut's loss itself: next-token cross-entropy, labels shifted once.

transformers 4.50-4.57 shift the labels a second time inside VisionEncoderDecoderModel's own
loss (docs/facts.md); a model trained on that learns to predict the token after next. These tests
fail if the task's loss is the double-shifted one.
"""

from __future__ import annotations

import torch
from torch import nn

from training.tasks.donut import receipts
from training.tasks.donut.data import char_tokenizer
from training.tasks.donut.model import next_token_loss, tiny_model
from training.tasks.donut.sequence import json_to_tokens, special_tokens


def _batch():
    tokenizer = char_tokenizer()
    parses = [receipts.receipt(seed) for seed in range(3)]
    tokens = set().union(*map(special_tokens, parses)) | {"<s_cord-v2>", "<sep/>"}
    tokenizer.add_special_tokens({"additional_special_tokens": sorted(tokens)})
    texts = [f"<s_cord-v2>{json_to_tokens(p)}</s>" for p in parses]
    ids = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt").input_ids
    torch.manual_seed(0)
    model = tiny_model(tokenizer, (32, 32), 32).eval()
    pixels = torch.rand(len(parses), 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return model, tokenizer, pixels, ids


def test_loss_is_next_token_cross_entropy():
    model, tokenizer, pixels, ids = _batch()
    logits = model(pixel_values=pixels, decoder_input_ids=ids[:, :-1]).logits
    loss = next_token_loss(logits, ids, tokenizer.pad_token_id)
    # by hand: position t (fed ids[:t+1]) predicts ids[t+1]; padding positions do not count
    total, count = 0.0, 0
    for row in range(ids.size(0)):
        for t in range(ids.size(1) - 1):
            target = ids[row, t + 1]
            if target == tokenizer.pad_token_id:
                continue
            total += nn.functional.cross_entropy(logits[row, t][None], target[None]).item()
            count += 1
    assert torch.isclose(loss, torch.tensor(total / count), atol=1e-5)


def test_loss_differs_from_the_double_shifted_one():
    model, tokenizer, pixels, ids = _batch()
    logits = model(pixel_values=pixels, decoder_input_ids=ids[:, :-1]).logits
    once = next_token_loss(logits, ids, tokenizer.pad_token_id)
    twice_labels = ids[:, 2:].clone()
    twice_labels[twice_labels == tokenizer.pad_token_id] = -100
    twice = nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), twice_labels.reshape(-1), ignore_index=-100
    )
    assert abs(once.item() - twice.item()) > 1e-3


def test_training_on_the_loss_learns_the_next_token():
    """A few steps on one batch: the greedy next token becomes the labelled one (a double
    shift would teach the token after it)."""
    model, tokenizer, pixels, ids = _batch()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        logits = model(pixel_values=pixels, decoder_input_ids=ids[:, :-1]).logits
        loss = next_token_loss(logits, ids, tokenizer.pad_token_id)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = model(pixel_values=pixels, decoder_input_ids=ids[:, :-1]).logits.argmax(-1)
    real = ids[:, 1:] != tokenizer.pad_token_id
    accuracy = (predicted == ids[:, 1:])[real].float().mean()
    assert accuracy > 0.9, accuracy
