"""Will the job import the project? Answered from what the job will have, importing nothing.

The job's Python has the standard library, the image's packages (core/image_contents.py, with
their dependencies), the wheels of the bundle (the family's lock, or the project's own lock,
which includes it), Lightning in both flavours, the runner (`training`) and the project folder
(its root and `src/`). This machine's venv is none of these: a package installed here proves
nothing about the job, and one missing here may be in the image.

The check reads the modules the config names (every `class_path`) and follows the project's own
imports (module level, `if` and `with` blocks, class bodies; not function bodies, not `try`
blocks that catch ImportError), so a script or test file that never runs in the job is not
held against it. A module the job cannot import is one line naming it and the fix.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from core import image_contents
from core.sourcedir import EXCLUDE_DIRS
from core.wheelhouse import lock_command, project_requirements, read_lock
from training import contract

#: Provided whatever the project's lock says: the runner brings the flavour the task uses.
LIGHTNING = ("lightning", "pytorch_lightning", "lightning_fabric", "lightning_utilities")
_OPTIONAL = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")


class MissingImport(ValueError):
    """The job would fail to import the project; the message is one line."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _import_names() -> dict[str, set[str]]:
    """Distribution name (normalized) -> its top-level import names, from the metadata of the
    packages installed here (names only: whether the job has them is decided elsewhere)."""
    out: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            out.setdefault(_normal(dist), set()).add(module)
    return out


def _modules_of(dist: str) -> set[str]:
    return _import_names().get(_normal(dist)) or {_normal(dist).replace("-", "_")}


def _with_dependencies(dists: list[str]) -> set[str]:
    """The distributions and, where their metadata is here, their dependencies' closure."""
    seen: set[str] = set()
    todo = [_normal(d) for d in dists]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = md.requires(dist) or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            if "extra ==" not in line:
                todo.append(_normal(re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0]))
    return seen


def job_packages(project: Path | None, family: str) -> set[str]:
    """Top-level import names the job has besides the project's own modules."""
    fam = image_contents.family(family)
    shipped = [re.split(r"[<>=!~\s]", line, maxsplit=1)[0] for line in fam.ships]
    wheels = [wheel.name for wheel in read_lock(fam, project)]
    names = set(sys.stdlib_module_names) | set(LIGHTNING) | {contract.RESERVED_TOP_LEVEL[0]}
    for dist in _with_dependencies(shipped) | {_normal(w) for w in wheels}:
        names |= _modules_of(dist)
    return names


def _roots(project: Path) -> list[Path]:
    return [project / sub for sub in contract.PACKAGE_ROOTS if (project / sub).is_dir()]


def _find(project: Path, module: str) -> Path | None:
    """The project file of a dotted module name (package __init__ or module.py), or None."""
    parts = module.split(".")
    for root in _roots(project):
        base = root.joinpath(*parts)
        for path in (base / "__init__.py", base.with_suffix(".py")):
            if path.is_file() and not set(path.relative_to(project).parts) & set(EXCLUDE_DIRS):
                return path
    return None


def _is_local(project: Path, top: str) -> bool:
    return any((root / top).is_dir() or (root / f"{top}.py").is_file() for root in _roots(project))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported (see the module docstring)."""
    for node in body:
        if isinstance(node, ast.Try):
            caught = {ast.unparse(h.type) if h.type else "BaseException" for h in node.handlers}
            if any(name.split(".")[-1] in _OPTIONAL for name in caught):
                continue
            yield from _statements(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _statements(node.body + node.orelse)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _statements(node.body)
        else:
            yield node


def _imports(path: Path, module: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of each import `path` runs at import time."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _statements(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base, [alias.name for alias in node.names]


def class_paths(config: Mapping[str, Any], overrides: Mapping[str, str]) -> list[tuple[str, str]]:
    """(dotted key, class path) of every `class_path` in the config and the overrides."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                if name == "class_path" and isinstance(value, str):
                    found.append((f"{key}.class_path".lstrip("."), value))
                else:
                    walk(value, f"{key}.{name}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{key}[{index}]")

    walk(config, "")
    found += [(k, v) for k, v in overrides.items() if k.endswith(".class_path")]
    return found


def check_imports(
    project: Path, config: Mapping[str, Any], overrides: Mapping[str, str], family: str
) -> None:
    """MissingImport (one line) for the first module the job could not import."""
    project = Path(project).resolve()
    have = job_packages(project, family)
    where = "the source dir, the image or the bundle's wheels"
    seen: set[str] = set()
    todo: list[tuple[str, str]] = []
    for key, path in class_paths(config, overrides):
        module = path.rpartition(".")[0]
        top = module.split(".")[0]
        if not _is_local(project, top) and top not in have:
            raise MissingImport(
                f"{key}={path!r}: the job has no module {top!r} (not in {where}): "
                f"{_fix(project, top)}"
            )
        todo.append((module, f"{key}={path!r}"))
    while todo:
        module, why = todo.pop(0)
        if module in seen:
            continue
        seen.add(module)
        file = _find(project, module)
        if file is None:
            continue
        for line, name, names in _imports(file, module):
            top = name.split(".")[0]
            if _is_local(project, top):
                todo.append((name, why))
                todo += [(f"{name}.{sub}", why) for sub in names if sub != "*"]
            elif top not in have:
                rel = file.relative_to(project)
                raise MissingImport(
                    f"{rel}:{line} imports {top!r}, which the job will not have (not in {where};"
                    f" needed by {why}): {_fix(project, top)}"
                )


def _fix(project: Path, top: str) -> str:
    fam_any = next(iter(image_contents.FAMILIES.values()))
    own = project_requirements(project, fam_any)
    target = own.name if own is not None else "requirements.txt"
    return (
        f"put the {top} folder inside {project} (or its src/) if it is your code, else add its "
        f"distribution to {target} there and run {lock_command(project)}"
    )
