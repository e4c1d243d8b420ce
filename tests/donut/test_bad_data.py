"""Bad Donut data fails before training, one line naming the file or row and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from training.tasks.digits.data import DataError
from training.tasks.donut.data import DonutDataModule
from training.tasks.donut.model import DonutModule
from training.tasks.donut.receipts import write_receipts


def _setup(monkeypatch, **channels: Path) -> DonutDataModule:
    for name, folder in channels.items():
        monkeypatch.setenv(f"SM_CHANNEL_{name.upper()}", str(folder))
    data = DonutDataModule(image_size=(64, 48), max_length=64)
    data.setup("fit")
    return data


def _error(monkeypatch, **channels: Path) -> str:
    with pytest.raises(DataError) as info:
        _setup(monkeypatch, **channels)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def train(tmp_path) -> Path:
    return write_receipts(tmp_path / "train", 3)


def _rewrite_row(folder: Path, index: int, **changes) -> Path:
    meta = folder / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    rows[index].update(changes)
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return meta


def test_good_channel_loads(monkeypatch, train):
    data = _setup(monkeypatch, train=train)
    assert len(data.train_rows) + len(data.val_rows) >= 3
    assert "<s_total_price>" in data.processor.tokenizer.get_vocab()


def test_missing_metadata(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    assert _error(monkeypatch, train=tmp_path / "empty") == (
        f"{tmp_path / 'empty'}: channel 'train' has no metadata.jsonl; expected images + "
        'metadata.jsonl rows {"file_name", "ground_truth"}'
    )


def test_row_naming_a_missing_file(monkeypatch, train):
    meta = _rewrite_row(train, 1, file_name="gone.png")
    assert _error(monkeypatch, train=train) == (
        f"{meta}:2: file_name 'gone.png' does not exist in {train}"
    )


def test_ground_truth_that_is_not_json(monkeypatch, train):
    meta = _rewrite_row(train, 0, ground_truth="{gt_parse: oops")
    assert _error(monkeypatch, train=train) == (
        f"{meta}:1: ground_truth is not JSON: '{{gt_parse: oops'"
    )


def test_ground_truth_without_a_parse(monkeypatch, train):
    meta = _rewrite_row(train, 2, ground_truth=json.dumps({"parse": {}}))
    assert _error(monkeypatch, train=train) == (
        f"{meta}:3: ground_truth must hold gt_parse or gt_parses"
    )


def test_image_that_does_not_open(monkeypatch, train):
    (train / "receipt-00001.png").write_bytes(b"not a png")
    message = _error(monkeypatch, train=train)
    assert message.startswith(
        f"{train / 'metadata.jsonl'}:2: 'receipt-00001.png' is not an image PIL can open ("
    )


def test_row_that_is_not_an_object(monkeypatch, train):
    meta = train / "metadata.jsonl"
    meta.write_text(meta.read_text() + "[1, 2]\n")
    assert _error(monkeypatch, train=train) == (
        f"{meta}:4: expected a JSON object with file_name and ground_truth"
    )


def test_pretrained_channel_that_is_not_a_save_pretrained_folder(monkeypatch, train, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "pytorch_model.bin").write_bytes(b"\0")
    assert _error(monkeypatch, train=train, pretrained=tmp_path / "weights") == (
        f"{tmp_path / 'weights'}: channel 'pretrained' is not a save_pretrained folder: expected "
        "preprocessor_config.json and tokenizer files (DonutProcessor.save_pretrained) next to "
        "config.json and model.safetensors"
    )


def test_image_size_the_encoder_cannot_take(monkeypatch, train):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(train))
    data = DonutDataModule(image_size=(60, 48), max_length=64)
    data.setup("fit")
    module = DonutModule(width=32)
    module._trainer_stub = SimpleNamespace(datamodule=data)
    type(module).trainer = property(lambda self: self._trainer_stub)  # setup() reads the data
    try:
        with pytest.raises(DataError) as info:
            module.setup("fit")
    finally:
        del type(module).trainer
    assert str(info.value) == (
        "data.init_args.image_size=[60, 48] does not fit the encoder: height and width must be "
        "multiples of 16 (patch x window x 2^stages)"
    )
