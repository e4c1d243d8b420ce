"""The Donut LightningModule: VisionEncoderDecoder built in setup() from the data module's
processor (its tokenizer grew the task's tokens) and image size.

The loss is computed here from the logits (decoder input = ids[:-1], labels = ids[1:], padding
ignored): transformers 4.50-4.57 shift the labels a second time inside the model's own loss,
which silently trains on the wrong targets.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from training.errors import DataError
from training.tasks.donut import metrics
from training.tasks.donut.sequence import tokens_to_json

log = logging.getLogger(__name__)


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Cross-entropy of logits[:, t] (fed ids[:, :t+1]) against ids[:, t+1]; padding ignored."""
    labels = input_ids[:, 1:].clone()
    labels[labels == pad_id] = -100
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100
    )


def encoder_multiple(config: Any) -> int:
    """Height and width must be multiples of this for the Swin windows to tile every stage."""
    return int(config.patch_size * config.window_size * 2 ** (len(config.depths) - 1))


def tiny_model(tokenizer: Any, image_size: tuple[int, int], width: int) -> Any:
    """A random DonutSwin + MBart small enough for a CPU (offline mode)."""
    from transformers import (
        DonutSwinConfig,
        DonutSwinModel,
        MBartConfig,
        MBartForCausalLM,
        VisionEncoderDecoderModel,
    )

    stage = max(4, width // 2)
    encoder = DonutSwinConfig(
        image_size=list(image_size),
        patch_size=4,
        embed_dim=stage,
        depths=[1, 1],
        num_heads=[1, 2],
        window_size=2,
        drop_path_rate=0.0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    decoder = MBartConfig(
        vocab_size=len(tokenizer),
        d_model=stage * 2,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=stage * 4,
        max_position_embeddings=1024,
        is_decoder=True,
        add_cross_attention=True,
        scale_embedding=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    return VisionEncoderDecoderModel(
        encoder=DonutSwinModel(encoder), decoder=MBartForCausalLM(decoder)
    )


class DonutModule(pl.LightningModule):
    """Fine-tunes Donut; validation decodes greedily and scores the JSON.

    Args:
        lr: AdamW learning rate for one process (the recipe: 1e-7 x 8; the runner scales it).
        width: hidden size of the offline tiny model (ignored with a pretrained channel).
        warmup_steps: linear learning-rate warm-up, then cosine decay to 0 over the run (as
            the original Donut training).
    """

    def __init__(self, lr: float = 8e-7, width: int = 32, warmup_steps: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr, self.width, self.warmup_steps = lr, width, warmup_steps
        self.model: Any = None
        self.processor: Any = None
        self._preds: list[Any] = []
        self._answers: list[Any] = []
        self._distances: list[float] = []
        self._loss_sum = 0.0

    # --- model ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.model is None:
            self.build(self.trainer.datamodule)

    def build(self, data: Any) -> None:
        """The model for `data` (a set-up DonutDataModule): pretrained or tiny, token embeddings
        grown to the tokenizer, generation ids set."""
        self.processor = data.processor
        tokenizer = self.processor.tokenizer
        if data.pretrained is not None:
            from transformers import VisionEncoderDecoderModel

            try:
                self.model = VisionEncoderDecoderModel.from_pretrained(data.pretrained)
            except (OSError, ValueError) as err:
                raise DataError(
                    f"{data.pretrained}: channel 'pretrained' is not a VisionEncoderDecoder "
                    f"save_pretrained folder ({str(err).splitlines()[0][:120]})"
                ) from None
            self.model.config.encoder.image_size = list(data.image_size)
        else:
            self.model = tiny_model(tokenizer, data.image_size, self.width)
        multiple = encoder_multiple(self.model.config.encoder)
        if any(side % multiple for side in data.image_size):
            raise DataError(
                f"data.init_args.image_size={list(data.image_size)} does not fit the encoder: "
                f"height and width must be multiples of {multiple} (patch x window x 2^stages)"
            )
        self.model.decoder.resize_token_embeddings(len(tokenizer))
        config = self.model.config
        config.pad_token_id = tokenizer.pad_token_id
        config.decoder_start_token_id = tokenizer.convert_tokens_to_ids(data.task_token)
        config.eos_token_id = tokenizer.eos_token_id
        config.decoder.vocab_size = len(tokenizer)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits for every position of input_ids[:, :-1]."""
        out = self.model(pixel_values=pixel_values, decoder_input_ids=input_ids[:, :-1])
        return out.logits

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        logits = self(batch["pixel_values"], batch["input_ids"])
        return next_token_loss(logits, batch["input_ids"], self.processor.tokenizer.pad_token_id)

    # --- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["parses"]))
        return loss

    def configure_optimizers(self) -> Any:
        import math

        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(self.warmup_steps, total - 1)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # --- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def parse(self, pixel_values: torch.Tensor, max_length: int | None = None) -> list[Any]:
        """Greedy decoding of a batch of images to JSON."""
        tokenizer = self.processor.tokenizer
        start = torch.full(
            (pixel_values.size(0), 1),
            self.model.config.decoder_start_token_id,
            dtype=torch.long,
            device=pixel_values.device,
        )
        out = self.model.generate(
            pixel_values=pixel_values,
            decoder_input_ids=start,
            max_length=max_length or self.trainer.datamodule.max_length,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            do_sample=False,
            num_beams=1,
        )
        return [tokens_to_json(self.decode(seq)) for seq in out]

    def decode(self, ids: torch.Tensor) -> str:
        tokenizer = self.processor.tokenizer
        text = tokenizer.decode(ids, skip_special_tokens=False)
        for token in (tokenizer.eos_token, tokenizer.pad_token, self.trainer.datamodule.task_token):
            text = text.replace(token, "")
        return text.strip()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        preds = self.parse(batch["pixel_values"])
        from training.tasks.donut.sequence import json_to_tokens

        for pred, answer in zip(preds, batch["parses"], strict=True):
            self._distances.append(
                metrics.normalized_edit_distance(json_to_tokens(pred), json_to_tokens(answer))
            )
        self._preds += preds
        self._answers += batch["parses"]
        self._loss_sum += float(self.loss(batch)) * len(preds)

    def on_validation_epoch_end(self) -> None:
        count = max(1, len(self._distances))
        ted = sum(map(metrics.ted_accuracy, self._preds, self._answers)) / count
        # One all_reduce(SUM) for every sum: smddp rejects the AVG that sync_dist=True sends.
        fields = metrics.field_counts(self._preds, self._answers)
        local = torch.tensor(
            [
                sum(self._distances),
                ted * count,
                float(len(self._distances)),
                self._loss_sum,
                *fields,
            ],
            dtype=torch.float64,
            device=self.device,
        )
        totals = self.trainer.strategy.reduce(local, reduce_op="sum")
        n = max(1.0, float(totals[2]))
        self.log("val_loss", float(totals[3]) / n, rank_zero_only=True)
        self.log("val_edit_distance", float(totals[0]) / n, rank_zero_only=True)
        self.log("val_ted_accuracy", float(totals[1]) / n, rank_zero_only=True)
        self.log("val_f1", metrics.f1_of(*(float(x) for x in totals[4:7])), rank_zero_only=True)
        self._preds, self._answers, self._distances, self._loss_sum = [], [], [], 0.0

    # --- export -----------------------------------------------------------------------------
    def export(self, model_dir: Path) -> None:
        """save_pretrained model (safetensors) and processor: loads with from_pretrained."""
        self.model.save_pretrained(model_dir, safe_serialization=True)
        self.processor.save_pretrained(model_dir)
