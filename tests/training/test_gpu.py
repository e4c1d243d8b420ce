"""CUDA: precision auto resolves to bf16-mixed on bf16 GPUs and the default task trains in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training import contract

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.timeout(300)
def test_bf16_on_cuda(local_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.train import main

    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    assert main(["--epochs", "3", "--precision", "auto"]) == 0
    info = json.loads((local_env / "model" / contract.MODEL_INFO_FILE).read_text())
    assert info["precision"] == "bf16-mixed"
    assert info["cluster"]["accelerator"] == "gpu"
    assert info["metrics"]["val_acc"] >= 0.95
