"""The forms a LightningCLI project's config comes in, brought to the one the runner parses.

- A `fit:` subcommand config (`python cli.py fit --config config.yaml` with the keys nested
  under `fit:`) is read as its `fit:` section.
- A config written for `LightningCLI(MyModel, MyData)` names no classes (`model: {hidden: 64}`):
  the classes come from that call in the project's code (read, never run), and the section's
  keys become their `init_args`. Without such a call the line says what to add.

Imports only the standard library and PyYAML: the operator side (no torch) uses it too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from training import contract
from training.errors import ConfigError

#: LightningCLI's arguments for the two classes: (position, keyword) per config section.
_CLI_ARGS = {"model": (0, "model_class"), "data": (1, "datamodule_class")}


def unwrap_subcommand(data: dict[str, Any]) -> dict[str, Any]:
    """The `fit:` section of a subcommand config; any other config as it is."""
    fit = data.get("fit")
    if "model" not in data and isinstance(fit, dict) and ("model" in fit or "trainer" in fit):
        return fit
    return data


def _python_files(code_root: Path) -> Iterator[Path]:
    for path in sorted(code_root.rglob("*.py")):
        rel = path.relative_to(code_root).parts
        if not any(part.startswith(".") or part in ("tests", "__pycache__") for part in rel):
            yield path


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin (`from pkg.mod import Cls as C` -> C: pkg.mod.Cls)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name] = alias.name
    return names


def _dotted(node: ast.expr, names: Mapping[str, str], module: str) -> str | None:
    if isinstance(node, ast.Name):
        return names.get(node.id, f"{module}.{node.id}")
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names, module)
        return f"{base}.{node.attr}" if base else None
    return None


def _importable(code_root: Path, class_path: str) -> bool:
    parts = class_path.split(".")[:-1]
    for sub in contract.PACKAGE_ROOTS:
        base = (code_root / sub).joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def cli_classes(code_root: Path) -> dict[str, str]:
    """Section -> class path of the classes given to a `LightningCLI(...)` call in the project,
    where they import from the project root as the job imports them."""
    for path in _python_files(code_root):
        text = path.read_text(errors="replace")
        if "LightningCLI(" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        names = _imported_names(tree)
        module = ".".join(path.relative_to(code_root).with_suffix("").parts)
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            if getattr(call.func, "id", getattr(call.func, "attr", None)) != "LightningCLI":
                continue
            found = {}
            for section, (position, keyword) in _CLI_ARGS.items():
                given = [k.value for k in call.keywords if k.arg == keyword]
                given += call.args[position : position + 1]
                dotted = _dotted(given[0], names, module) if given else None
                if dotted and _importable(code_root, dotted):
                    found[section] = dotted
            if found:
                return found
    return {}


def fill_class_paths(data: dict[str, Any], code_root: Path, config_name: str) -> dict[str, Any]:
    """Sections without a class_path get the class the project's LightningCLI call names."""
    missing = [
        s
        for s in ("model", "data")
        if not (isinstance(data.get(s), dict) and "class_path" in data[s])
        and not isinstance(data.get(s), str)
    ]
    if not missing:
        return data
    found = cli_classes(code_root)
    out = dict(data)
    for section in missing:
        given = out.get(section)
        if section in found:
            out[section] = {"class_path": found[section], "init_args": dict(given or {})}
        elif section == "model" or given is not None:
            raise ConfigError(
                f"{section}: in {config_name} names no class (a config for LightningCLI(MyModel, "
                "MyData)) and no LightningCLI(...) call in the project names one: write "
                f"{section}: {{class_path: mypkg.module.MyClass, init_args: {{...}}}}"
            )
    return out
