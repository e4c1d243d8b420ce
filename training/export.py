"""The model dir: what global rank 0 alone leaves for model.tar.gz, and how to load it back.

    model.pt      the LightningModule's state_dict (tensors on CPU)
    config.yaml   the resolved task config: class paths and init_args, every override applied
    model.json    metrics, hyperparameters, effective learning rate, cluster, package versions
    ...           whatever the module's own `export(model_dir)` hook writes (save_pretrained)

Each file is written atomically, so a job killed mid-write leaves whole files or none.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

from training import contract
from training.atomic import atomic_write_bytes, remove_stale_temps

MODEL_FILES = (contract.MODEL_FILE, contract.MODEL_CONFIG_FILE, contract.MODEL_INFO_FILE)


def save_model(module: Any, model_dir: Path, *, config_yaml: str, info: dict[str, Any]) -> None:
    """Weights, config and record (atomically each), then the module's `export` hook if any."""
    import torch

    model_dir = Path(model_dir)
    remove_stale_temps(model_dir, MODEL_FILES)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buffer)
    atomic_write_bytes(model_dir / contract.MODEL_FILE, buffer.getvalue())
    atomic_write_bytes(model_dir / contract.MODEL_CONFIG_FILE, config_yaml.encode())
    text = json.dumps(info, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(model_dir / contract.MODEL_INFO_FILE, text.encode())
    hook = getattr(module, "export", None)
    if callable(hook):
        hook(model_dir)


def load_model(model_dir: Path, code_root: Path | None = None) -> Any:
    """The trained LightningModule, rebuilt from config.yaml with the user's classes and loaded
    with model.pt (eval mode). `code_root`: where the task's packages are (the source dir)."""
    import torch

    model_dir = Path(model_dir)
    for sub in contract.PACKAGE_ROOTS if code_root is not None else ():
        path = Path(code_root) / sub
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))
    module = build_module((model_dir / contract.MODEL_CONFIG_FILE).read_text())
    state = torch.load(model_dir / contract.MODEL_FILE, map_location="cpu", weights_only=True)
    module.load_state_dict(state)
    return module.eval()


def build_module(config_yaml: str) -> Any:
    """A fresh LightningModule from a resolved task config (its `model:` section), the layers
    its own `configure_model` creates included: a plain module, no process group needed."""
    import yaml
    from jsonargparse import ArgumentParser

    from training import lightning_flavour

    section = yaml.safe_load(config_yaml)["model"]
    pl = lightning_flavour.package(lightning_flavour.detect(section["class_path"], None))
    # jsonargparse, as the job parsed it: nested class_path/init_args are built too
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningModule, "model")
    module = parser.instantiate_classes(parser.parse_object({"model": section})).model
    module.configure_model()  # LightningModule's default does nothing
    return module
