"""Which Lightning a task is written against: `lightning.pytorch` or `pytorch_lightning`.

The two packages hold the same code under different names, and their classes do not mix: a
`pytorch_lightning.Trainer` rejects a `lightning.pytorch.LightningModule`. So the Trainer, the
strategy, the callbacks and the CLI parser all come from the package the user's classes derive
from, found here from the config's class paths (imported, never instantiated).
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

from training.errors import ConfigError


class ImportFailure(ConfigError):
    """A class path whose module does not import; `missing` names the module not found."""

    def __init__(self, message: str, missing: str | None) -> None:
        super().__init__(message)
        self.missing = missing


#: Import name -> the package a bundle must carry for it.
FLAVOURS = {"lightning.pytorch": "lightning", "pytorch_lightning": "pytorch-lightning"}


def import_class(key: str, class_path: object) -> type:
    """The class at `class_path` (`pkg.module.Class`); one-line ConfigError naming the key."""
    if not isinstance(class_path, str) or "." not in class_path:
        raise ConfigError(
            f"{key}={class_path!r} is invalid: expected a dotted import path like "
            "mypkg.model.MyModel"
        )
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportFailure(
            f"{key}={class_path!r} cannot be imported: {err}; the module must be in the "
            "source dir (training.source_dir) or a package its requirements.txt installs",
            getattr(err, "name", None),
        ) from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{key}={class_path!r} is invalid: {module_name} has no class {name}")
    return cls


def _flavour_of(cls: type, base: str) -> str | None:
    for klass in cls.__mro__:
        if klass.__name__ != base:
            continue
        for flavour in FLAVOURS:
            if klass.__module__.startswith(flavour + "."):
                return flavour
    return None


def detect(model_path: object, data_path: object | None) -> str:
    """The flavour both classes derive from; one-line ConfigError otherwise."""
    found: dict[str, str] = {}
    for key, path, base in (
        ("model.class_path", model_path, "LightningModule"),
        ("data.class_path", data_path, "LightningDataModule"),
    ):
        if path is None:
            continue
        flavour = _flavour_of(import_class(key, path), base)
        if flavour is None:
            raise ConfigError(f"{key}={path!r} is not a {base} (from {' or '.join(FLAVOURS)})")
        found[key] = flavour
    model, data = found["model.class_path"], found.get("data.class_path")
    if data is not None and data != model:
        raise ConfigError(
            f"data.class_path={data_path!r} derives from {data} but "
            f"model.class_path={model_path!r} from {model}: use one Lightning package for both"
        )
    return model


def package(flavour: str) -> ModuleType:
    """The Lightning package itself (`pl`)."""
    return importlib.import_module(flavour)


def submodule(pl: ModuleType, name: str) -> ModuleType:
    """`pl.<name>` imported (attribute access alone does not import a subpackage)."""
    return importlib.import_module(f"{pl.__name__}.{name}")


@functools.cache
def callback_class(flavour: str, hooks: type) -> type:
    """`hooks` (a plain class with Callback hook methods) as a Callback of `flavour`'s package."""
    base = package(flavour).Callback
    namespace = {"__doc__": hooks.__doc__, "__module__": hooks.__module__}
    return type(hooks.__name__.lstrip("_"), (hooks, base), namespace)
