"""Reproducible sourcedir.tar.gz of the training code (pure Python; no aws_cdk import).

Layout at the archive root, as SageMaker's toolkit unpacks it into /opt/ml/code:

    requirements.txt      installs only ./wheels, hash-pinned (core/wheelhouse.py)
    wheels/*.whl          every package the image family lacks (its lock, training/requirements/,
                          or the user project's requirements.<family>.lock)
    training/...          the runner package (.py and data files; no caches, no tests)
    <project>/...         the user project's files (training.source_dir), at the root, so its
                          packages import as they do in the project folder

Same source bytes -> same archive bytes: entries sorted, mtimes/uid/gid/names zeroed, modes
fixed, gzip header without file name and with mtime 0. `touch` changes nothing; an edit does.
Used by the CDK asset (infra/source_bundle.py) and by the local runner.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from core import wheelhouse as wheelhouse_mod
from core.image_contents import family
from core.wheelhouse import BundleError, Wheelhouse
from training import contract

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "training"
ARCHIVE_NAME = "sourcedir.tar.gz"
#: Files of training/ that go into the bundle (code and small data files the code reads).
INCLUDE_SUFFIXES = (".py", ".txt", ".json", ".yaml", ".yml", ".cfg")
EXCLUDE_DIRS = ("__pycache__", "tests", ".pytest_cache", ".ipynb_checkpoints", "requirements")
_FILE_MODE = 0o644
_DIR_MODE = 0o755


#: A user project bigger than this is refused: data belongs in a channel, not in the code.
MAX_PROJECT_BYTES = 64 * 1024 * 1024
_PROJECT_SKIP_SUFFIXES = (".pyc", ".pyo", ".ckpt", ".lock")


def requirements_dir(
    source_dir: str | Path | None, config: str, root: Path = REPO_ROOT
) -> Path | None:
    """The folder whose requirements.txt joins the wheelhouse: the user project's, else a
    built-in task's own (training/tasks/<name>/), else none (the runner's lock alone)."""
    if source_dir is not None and _has_requirements(Path(source_dir)):
        return Path(source_dir)
    task = root / contract.TASKS_DIR / config
    if config in contract.BUILTIN_TASKS and _has_requirements(task):
        return task
    return None


def _is_requirements(path: Path) -> bool:
    """requirements.txt / requirements.<family>.txt: they become the wheelhouse, not files."""
    return path.name.startswith("requirements") and path.suffix == ".txt"


def _has_requirements(folder: Path) -> bool:
    return any(_is_requirements(p) for p in folder.iterdir()) if folder.is_dir() else False


def project_files(project: Path) -> list[tuple[str, Path]]:
    """The user project's files for the bundle root (no caches, hidden files or locks; its
    requirements.txt becomes the wheelhouse instead)."""
    project = Path(project)
    for name in contract.RESERVED_TOP_LEVEL[:2]:
        if (project / name).exists() or (project / f"{name}.py").exists():
            raise BundleError(
                f"{project}: top-level {name!r} clashes with the bundle's own {name}/: rename it"
            )
    out, total = [], 0
    for path in sorted(project.rglob("*")):
        rel = path.relative_to(project)
        if any(part in EXCLUDE_DIRS[:4] or part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file() or path.suffix in _PROJECT_SKIP_SUFFIXES:
            continue
        if rel.parent == Path(".") and _is_requirements(rel):
            continue
        total += path.stat().st_size
        out.append((rel.as_posix(), path))
    if total > MAX_PROJECT_BYTES:
        largest = max(out, key=lambda entry: entry[1].stat().st_size)[0]
        raise BundleError(
            f"{project}: {total / 2**20:.0f} MiB of files (largest {largest}), above the "
            f"{MAX_PROJECT_BYTES // 2**20} MiB code limit: data belongs in the train channel"
        )
    return out


def bundle_files(
    root: Path = REPO_ROOT,
    *,
    image_family: str,
    wheelhouse: Wheelhouse | None = None,
    project: Path | None = None,
    config: str = "digits",
) -> list[tuple[str, Path | bytes]]:
    """(archive name, source path or bytes) for every file of the bundle, sorted by name."""
    family(image_family)  # a one-line ValueError naming the allowed families
    package = root / PACKAGE
    if not package.is_dir():
        raise FileNotFoundError(f"no {PACKAGE}/ package under {root}")
    requirements = requirements_dir(project, config, root)
    house = wheelhouse or wheelhouse_mod.build(image_family, project=requirements)
    entries: list[tuple[str, Path | bytes]] = [("requirements.txt", house.requirements.encode())]
    entries += [(f"{contract.WHEELHOUSE_DIR}/{name}", path) for name, path in house.wheels]
    for path in package.rglob("*"):
        rel = path.relative_to(root)
        if any(part in EXCLUDE_DIRS or part.startswith(".") for part in rel.parts):
            continue
        if (
            path.is_file()
            and path.suffix in INCLUDE_SUFFIXES
            and not path.name.startswith("test_")
            and not _is_requirements(path)
        ):
            entries.append((rel.as_posix(), path))
    if project is not None:
        entries += project_files(project)
    return sorted(entries, key=lambda entry: entry[0])


def _tarinfo(name: str, *, size: int = 0, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = _DIR_MODE if is_dir else _FILE_MODE
    return info


def build_sourcedir_bytes(
    root: Path = REPO_ROOT,
    *,
    image_family: str,
    wheelhouse: Wheelhouse | None = None,
    project: Path | None = None,
    config: str = "digits",
) -> bytes:
    """The archive as bytes (deterministic)."""
    files = bundle_files(
        root, image_family=image_family, wheelhouse=wheelhouse, project=project, config=config
    )
    dirs = sorted({str(Path(name).parent.as_posix()) for name, _ in files} - {"."})
    # every parent directory too, so the toolkit recreates empty-looking packages faithfully
    for d in list(dirs):
        parent = Path(d).parent
        while str(parent) != ".":
            dirs.append(parent.as_posix())
            parent = parent.parent
    members: list[tuple[str, Path | bytes | None]] = [(d, None) for d in sorted(set(dirs))]
    members += files
    members.sort(key=lambda m: m[0])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in members:
            if path is None:
                tar.addfile(_tarinfo(name, is_dir=True))
            else:
                data = path if isinstance(path, bytes) else path.read_bytes()
                tar.addfile(_tarinfo(name, size=len(data)), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_sourcedir(
    out_path: Path,
    *,
    image_family: str,
    root: Path = REPO_ROOT,
    wheelhouse: Wheelhouse | None = None,
    project: Path | None = None,
    config: str = "digits",
) -> str:
    """Write the archive to `out_path` (only if its bytes changed); return its sha256 hex."""
    data = build_sourcedir_bytes(
        root, image_family=image_family, wheelhouse=wheelhouse, project=project, config=config
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not out_path.is_file() or out_path.read_bytes() != data:
        out_path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
