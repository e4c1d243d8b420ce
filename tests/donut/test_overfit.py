"""The donut task learns: a tiny random Donut overfits 8 synthetic receipts to exact JSON
(greedy decoding), through the runner's entry script, and its export loads with from_pretrained."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import timing
from training import contract

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
#: Offline mode, small enough for a CPU: 8 receipts, validated on themselves.
OVERFIT = {
    "config": "donut",
    "data.init_args.image_size": "[128, 96]",
    "data.init_args.max_length": "96",
    "data.init_args.synthetic_samples": "8",
    "data.init_args.val_fraction": "0",
    "batch_size": "8",
    "epochs": "600",
    "lr": "3e-3",
    "model.init_args.width": "64",
    "model.init_args.warmup_steps": "30",
    "trainer.check_val_every_n_epoch": "300",
}


def test_overfits_eight_receipts_to_exact_json(tmp_path):
    args = [arg for key, value in OVERFIT.items() for arg in (f"--{key}", value)]
    done = subprocess.run(
        [sys.executable, "training/train.py", *args],
        cwd=REPO,
        env={**os.environ, contract.LOCAL_ROOT_ENV: str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=timing.bound(600),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [contract.parse_metric_line(line) for line in done.stdout.splitlines()]
    last = [line for line in lines if "epoch" in line][-1]
    assert last["val_edit_distance"] == 0.0, last
    assert last["val_f1"] == 1.0 and last["val_ted_accuracy"] == 1.0, last

    import torch
    from transformers import DonutProcessor, VisionEncoderDecoderModel

    from training.tasks.donut import receipts
    from training.tasks.donut.sequence import tokens_to_json

    model_dir = tmp_path / "model"
    model = VisionEncoderDecoderModel.from_pretrained(model_dir).eval()
    processor = DonutProcessor.from_pretrained(model_dir)
    parse = receipts.receipt(3)
    pixels = processor.image_processor(receipts.render(parse), return_tensors="pt").pixel_values
    start = torch.tensor([[model.config.decoder_start_token_id]])
    out = model.generate(pixel_values=pixels, decoder_input_ids=start, max_length=96)
    text = processor.tokenizer.decode(out[0], skip_special_tokens=False)
    for token in ("<s_cord-v2>", processor.tokenizer.eos_token, processor.tokenizer.pad_token):
        text = text.replace(token, "")
    from training.tasks.donut.metrics import normalize

    assert normalize(tokens_to_json(text)) == normalize(parse)
