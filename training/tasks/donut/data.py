"""Donut's data: a channel of images + metadata.jsonl, checked before training, as batches.

Each `metadata.jsonl` row is `{"file_name": ..., "ground_truth": "<JSON string>"}` whose JSON
holds `gt_parse` (one parse) or `gt_parses` (several; the first is the target). A row naming a
missing file, an image that does not open, a ground truth that is not JSON: one line naming the
file and row, before training. Without a `train` channel the module renders synthetic receipts
(receipts.py). The tokenizer and image processor are the `pretrained` channel's, or, offline, a
character-level tokenizer built here; the task's `<s_key>` tokens are added to it.
"""

from __future__ import annotations

import json
import logging
import os
import string
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from training import contract, sm_env
from training.errors import DataError
from training.tasks.donut import receipts
from training.tasks.donut.sequence import SEP, json_to_tokens, special_tokens

log = logging.getLogger(__name__)

PRETRAINED_CHANNEL = "pretrained"
METADATA = "metadata.jsonl"


def read_metadata(folder: Path, channel: str) -> list[tuple[Path, Any]]:
    """(image path, parse) per row, every row checked; raises DataError (one line)."""
    folder = Path(folder)
    meta = folder / METADATA
    if not meta.is_file():
        raise DataError(
            f"{folder}: channel {channel!r} has no {METADATA}; expected images + "
            f'{METADATA} rows {{"file_name", "ground_truth"}}'
        )
    from PIL import Image

    rows = []
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{meta}:{number}"
        try:
            row = json.loads(line)
            name, truth = row["file_name"], row["ground_truth"]
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"{where}: expected a JSON object with file_name and ground_truth"
            ) from None
        try:
            truth = json.loads(truth) if isinstance(truth, str) else truth
        except ValueError:
            raise DataError(f"{where}: ground_truth is not JSON: {str(truth)[:60]!r}") from None
        if not isinstance(truth, dict) or not ("gt_parse" in truth or "gt_parses" in truth):
            raise DataError(f"{where}: ground_truth must hold gt_parse or gt_parses")
        parse = truth["gt_parse"] if "gt_parse" in truth else (truth["gt_parses"] or [None])[0]
        path = folder / str(name)
        if not path.is_file():
            raise DataError(f"{where}: file_name {name!r} does not exist in {folder}")
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as err:
            raise DataError(f"{where}: {name!r} is not an image PIL can open ({err})") from None
        rows.append((path, parse))
    if not rows:
        raise DataError(f"{meta}: no rows")
    return rows


def char_tokenizer() -> Any:
    """A character-level tokenizer over printable ASCII (offline mode: no hub, no files)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    chars = sorted(set(string.printable) - set("\t\n\r\x0b\x0c"))
    vocab = {token: i for i, token in enumerate([*specials, *chars])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def load_pretrained_processor(folder: Path) -> Any:
    from transformers import DonutProcessor

    missing = [n for n in ("preprocessor_config.json",) if not (Path(folder) / n).is_file()]
    if missing or not any(Path(folder).glob("tokenizer*")):
        raise DataError(
            f"{folder}: channel {PRETRAINED_CHANNEL!r} is not a save_pretrained folder: expected "
            "preprocessor_config.json and tokenizer files (DonutProcessor.save_pretrained) next "
            "to config.json and model.safetensors"
        )
    return DonutProcessor.from_pretrained(folder)


class _Receipts(Dataset):
    def __init__(self, rows: list[tuple[Any, Any]], module: DonutDataModule) -> None:
        self.rows, self.module = rows, module

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from PIL import Image

        source, parse = self.rows[index]
        image = Image.open(source).convert("RGB") if isinstance(source, Path) else source
        pixels = self.module.processor.image_processor(image, return_tensors="pt").pixel_values[0]
        return {"pixel_values": pixels, "sequence": self.module.sequence_of(parse), "parse": parse}


class DonutDataModule(pl.LightningDataModule):
    """Receipts (or any Donut-format documents) as pixel values + token ids.

    Args:
        batch_size: per-device batch size (the recipe: 4).
        num_workers: data loader workers per process.
        image_size: [height, width] the encoder sees (the recipe: [1280, 960]).
        max_length: longest token sequence (longer ones are cut).
        task_token: the decoder prompt; added to the tokenizer.
        synthetic_samples: receipts rendered when there is no train channel.
        val_fraction: share of the train rows held out when there is no validation channel
            (0: validate on the training rows themselves).
    """

    def __init__(
        self,
        batch_size: int = 4,
        num_workers: int = 0,
        image_size: tuple[int, int] = (1280, 960),
        max_length: int = 768,
        task_token: str = "<s_cord-v2>",
        synthetic_samples: int = 32,
        val_fraction: float = 0.125,
    ) -> None:
        super().__init__()
        self.batch_size, self.num_workers = batch_size, num_workers
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_length, self.task_token = max_length, task_token
        self.synthetic_samples, self.val_fraction = synthetic_samples, val_fraction
        self.channels = sm_env.read_channels(os.environ)
        pretrained = self.channels.get(PRETRAINED_CHANNEL)
        self.pretrained: Path | None = Path(pretrained) if pretrained else None
        self.processor: Any = None
        self.train_rows: list[tuple[Any, Any]] = []
        self.val_rows: list[tuple[Any, Any]] = []

    # --- data -------------------------------------------------------------------------------
    def _rows(self) -> tuple[list, list]:
        if contract.TRAIN_CHANNEL in self.channels:
            train = read_metadata(self.channels[contract.TRAIN_CHANNEL], contract.TRAIN_CHANNEL)
        else:
            train = [
                (receipts.render(p), p)
                for p in map(receipts.receipt, range(self.synthetic_samples))
            ]
        if contract.VALIDATION_CHANNEL in self.channels:
            folder = self.channels[contract.VALIDATION_CHANNEL]
            return train, read_metadata(folder, contract.VALIDATION_CHANNEL)
        if self.val_fraction <= 0:  # validate on the training documents (overfitting checks)
            return train, train
        held = max(1, round(len(train) * self.val_fraction))
        return (train[held:] or train), train[:held]

    def sequence_of(self, parse: Any) -> str:
        return f"{self.task_token}{json_to_tokens(parse)}{self.processor.tokenizer.eos_token}"

    def setup(self, stage: str | None = None) -> None:
        if self.processor is not None:
            return
        self.train_rows, self.val_rows = self._rows()
        if self.pretrained is not None:
            self.processor = load_pretrained_processor(self.pretrained)
        else:
            from transformers import DonutImageProcessor, DonutProcessor

            image_processor = DonutImageProcessor(
                size={"height": self.image_size[0], "width": self.image_size[1]},
                do_align_long_axis=False,
            )
            self.processor = DonutProcessor(
                image_processor=image_processor, tokenizer=char_tokenizer()
            )
        image_processor = self.processor.image_processor
        image_processor.size = {"height": self.image_size[0], "width": self.image_size[1]}
        image_processor.do_align_long_axis = False
        new = {self.task_token, SEP}
        for _, parse in self.train_rows + self.val_rows:
            new |= special_tokens(parse)
        added = self.processor.tokenizer.add_special_tokens(
            {"additional_special_tokens": sorted(new)}
        )
        log.info(
            "%d train / %d validation documents; %d task tokens added",
            len(self.train_rows),
            len(self.val_rows),
            added,
        )

    # --- batches ----------------------------------------------------------------------------
    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        tokenizer = self.processor.tokenizer
        ids = tokenizer(
            [item["sequence"] for item in items],
            add_special_tokens=False,
            max_length=self.max_length,
            truncation=True,
            padding=True,
            return_tensors="pt",
        ).input_ids
        return {
            "pixel_values": torch.stack([item["pixel_values"] for item in items]),
            "input_ids": ids,
            "parses": [item["parse"] for item in items],
        }

    def _loader(self, rows: list, shuffle: bool) -> DataLoader:
        return DataLoader(
            _Receipts(rows, self),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_rows, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_rows, shuffle=False)
