"""The forms a LightningCLI project's config comes in, brought to the one the runner parses.

- A `fit:` subcommand config (`python cli.py fit --config config.yaml` with the keys nested
  under `fit:`) is read as its `fit:` section.
- A config written for `LightningCLI(MyModel, MyData)` names no classes (`model: {hidden: 64}`):
  the classes come from that call in the project's code (read, never run), and the section's
  keys become their `init_args`. Without such a call the line says what to add. A call of
  the project's own LightningCLI subclass counts, and the optimizer or scheduler class that
  subclass fixes (`parser.add_optimizer_args(torch.optim.AdamW)`) fills `optimizer:` /
  `lr_scheduler:` the same way. Classes come from explicit and star (`from models import *`)
  imports.
- Paths under /opt/ml (a config written for SageMaker) are the simulated host's folder in the
  local executor.

Imports only the standard library and PyYAML: the operator side (no torch) uses it too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import contract
from training.errors import ConfigError

#: LightningCLI's arguments for the two classes: (position, keyword) per config section.
_CLI_ARGS = {"model": (0, "model_class"), "data": (1, "datamodule_class")}
#: The parser calls a LightningCLI subclass fixes a class with: method -> (section, keyword).
_PARSER_ADDS = {
    "add_optimizer_args": ("optimizer", "optimizer_class"),
    "add_lr_scheduler_args": ("lr_scheduler", "lr_scheduler_class"),
}


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
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name] = alias.name
    return names


def _module_file(code_root: Path, module: str) -> Path | None:
    for sub in contract.PACKAGE_ROOTS:
        base = (code_root / sub).joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _importable(code_root: Path, class_path: str) -> bool:
    return _module_file(code_root, class_path.rpartition(".")[0]) is not None


def _defines(path: Path, name: str) -> bool:
    """Whether the module at `path` defines `name` at its top level."""
    try:
        tree = ast.parse(path.read_text(errors="replace"))
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return True
    return False


@dataclass
class _Module:
    """One project file as the search reads it: its import names and star imports."""

    tree: ast.Module
    name: str  # dotted, from the project root
    names: dict[str, str]
    stars: list[str]  # `from X import *` (absolute) modules, in order

    def dotted(self, node: ast.expr, code_root: Path) -> str | None:
        """Where a name used in this module comes from, as an import path."""
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value, code_root)
            return f"{base}.{node.attr}" if base else None
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.names:
            return self.names[node.id]
        local = any(
            isinstance(n, ast.ClassDef | ast.FunctionDef) and n.name == node.id
            for n in self.tree.body
        )
        if not local:  # `from models import *` then `NSNET2`: the star module's class
            for star in self.stars:
                path = _module_file(code_root, star)
                if path is not None and _defines(path, node.id):
                    return f"{star}.{node.id}"
        return f"{self.name}.{node.id}"


def _read_modules(code_root: Path) -> Iterator[_Module]:
    """The project's files that mention LightningCLI (a call, or a subclass of it)."""
    for path in _python_files(code_root):
        text = path.read_text(errors="replace")
        if "LightningCLI" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        stars = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and not node.level
            and any(alias.name == "*" for alias in node.names)
        ]
        name = ".".join(path.relative_to(code_root).with_suffix("").parts)
        yield _Module(tree, name, _imported_names(tree), stars)


def _last_name(node: ast.expr) -> str | None:
    return getattr(node, "id", getattr(node, "attr", None))


def _fixed_classes(cls: ast.ClassDef, module: _Module, code_root: Path) -> dict[str, str]:
    """Section -> class a LightningCLI subclass fixes in `add_arguments_to_parser`
    (`parser.add_optimizer_args(torch.optim.AdamW)`: its config's `optimizer:` holds only
    init args). A tuple of classes, or another nested_key, fixes nothing."""
    fixed = {}
    for call in ast.walk(cls):
        if not isinstance(call, ast.Call) or _last_name(call.func) not in _PARSER_ADDS:
            continue
        section, keyword = _PARSER_ADDS[_last_name(call.func)]
        nested = [k.value for k in call.keywords if k.arg == "nested_key"]
        if nested and not (isinstance(nested[0], ast.Constant) and nested[0].value == section):
            continue
        given = call.args[:1] + [k.value for k in call.keywords if k.arg == keyword]
        dotted = module.dotted(given[0], code_root) if given else None
        if dotted:
            fixed[section] = dotted
    return fixed


def _cli_subclasses(modules: list[_Module], code_root: Path) -> dict[str, dict[str, str]]:
    """Name -> fixed classes of every LightningCLI subclass in the project (through
    subclasses of subclasses), LightningCLI itself included."""
    found: dict[str, dict[str, str]] = {"LightningCLI": {}}
    grew = True
    while grew:
        grew = False
        for module in modules:
            for cls in ast.walk(module.tree):
                if not isinstance(cls, ast.ClassDef) or cls.name in found:
                    continue
                parents = [_last_name(b) for b in cls.bases if _last_name(b) in found]
                if parents:
                    inherited = {k: v for p in parents for k, v in found[p].items()}
                    found[cls.name] = inherited | _fixed_classes(cls, module, code_root)
                    grew = True
    return found


def cli_classes(code_root: Path) -> dict[str, str]:
    """Section -> class path of what a `LightningCLI(...)` call in the project (or a call of a
    subclass of it) names: the model and datamodule classes given to it, where they import
    from the project root as the job imports them, and the optimizer / scheduler classes the
    subclass fixes."""
    modules = list(_read_modules(code_root))
    clis = _cli_subclasses(modules, code_root)
    for module in modules:
        for call in ast.walk(module.tree):
            if not isinstance(call, ast.Call) or _last_name(call.func) not in clis:
                continue
            found = {}
            for section, (position, keyword) in _CLI_ARGS.items():
                given = [k.value for k in call.keywords if k.arg == keyword]
                given += call.args[position : position + 1]
                dotted = module.dotted(given[0], code_root) if given else None
                if dotted and _importable(code_root, dotted):
                    found[section] = dotted
            if found:
                return found | clis[_last_name(call.func)]
    return {}


def fill_class_paths(data: dict[str, Any], code_root: Path, config_name: str) -> dict[str, Any]:
    """Sections without a class_path get the class the project's LightningCLI call names (and
    `optimizer:` / `lr_scheduler:` the class its LightningCLI subclass fixes)."""

    def classless(section: str) -> bool:
        value = data.get(section)
        return not (isinstance(value, dict) and "class_path" in value) and not isinstance(
            value, str
        )

    missing = [s for s in ("model", "data", *(v[0] for v in _PARSER_ADDS.values())) if classless(s)]
    if not any(s in _CLI_ARGS or isinstance(data.get(s), dict) for s in missing):
        return data
    found = cli_classes(code_root)
    out = dict(data)
    for section in missing:
        given = out.get(section)
        if section in found and (given is None or isinstance(given, dict)):
            out[section] = {"class_path": found[section], "init_args": dict(given or {})}
        elif section in _CLI_ARGS and (section == "model" or given is not None):
            raise ConfigError(
                f"{section}: in {config_name} names no class (a config for LightningCLI(MyModel, "
                "MyData)) and no LightningCLI(...) call in the project names one: write "
                f"{section}: {{class_path: mypkg.module.MyClass, init_args: {{...}}}}"
            )
    return out


def host_paths(data: Any, env: Mapping[str, str]) -> Any:
    """Strings under /opt/ml in the config (`data_dir: /opt/ml/input/data`, a logger's
    `save_dir: /opt/ml/model`) name the host's SageMaker folder: unchanged on SageMaker, the
    simulated host's own folder where the local executor moved the toolkit's base dir."""
    base_dir = env.get(contract.BASE_DIR_ENV)
    if not base_dir or base_dir.rstrip("/") == contract.SAGEMAKER_ROOT:
        return data
    if isinstance(data, str):
        return contract.moved_path(data, base_dir)
    if isinstance(data, dict):
        return {key: host_paths(value, env) for key, value in data.items()}
    if isinstance(data, list):
        return [host_paths(value, env) for value in data]
    return data
