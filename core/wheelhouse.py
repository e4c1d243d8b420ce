"""The wheels a job brings: read the family's lock, fetch each wheel once, check it fits the image.

SageMaker's toolkit runs `python -m pip install -r requirements.txt` in /opt/ml/code when the
job starts, and the job has no network. So the bundle carries every wheel the image lacks and a
requirements.txt that installs only from them:

    --no-index
    --find-links wheels
    pytorch-lightning==2.2.5 --hash=sha256:...

(pip resolves a relative --find-links against the requirements file's folder; the hashes put
pip in hash-checking mode, so a tampered or swapped wheel fails the install.)

Wheels are fetched at synth from the lock's pins into a content-addressed cache
(`$TRAINOPS_WHEEL_CACHE`, default `~/.cache/trainops/wheels/<sha256>/<file>`): a warm synth
reads files and starts no process. No aws_cdk import: the local runner uses this too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from core.image_contents import REHEARSAL_PYTHON, ImageFamily, family
from training.contract import WHEELHOUSE_DIR

#: Above this the bundle is refused: every host downloads and unpacks it before training, and a
#: bundle this size means something from the image (torch, CUDA) slipped into the lock.
MAX_BUNDLE_BYTES = 512 * 1024 * 1024
_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)\s+--hash=sha256:(?P<sha>[0-9a-f]{64})"
    r"\s+#\s*(?P<file>\S+\.whl)\s*$"
)
_DIGESTS = re.compile(r"(?P<name>[\w.-]+) \(sha256 (?P<sha>[0-9a-f]{64})\)")
#: A user project's own requirements (training.source_dir), locked next to it per family.
PROJECT_REQUIREMENTS = "requirements.txt"


class BundleError(ValueError):
    """The code bundle cannot be built as configured; the message is one line."""


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    sha256: str
    filename: str

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class Wheelhouse:
    """What goes into the bundle: requirements.txt's text and the wheel files, by name."""

    requirements: str
    wheels: tuple[tuple[str, Path], ...]  # (file name, cached path), sorted


#: This machine's Python setup, which must not reach a lock resolution or a rehearsed image.
_LOCAL_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def clean_pip_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without this machine's venv, PYTHONPATH or pip configuration: a local mirror or
    find-links would hide a wheel the bundle lacks, or put a machine-local file in a lock."""
    out = {k: v for k, v in env.items() if not k.startswith("PIP_") and k not in _LOCAL_PYTHON_VARS}
    out["PIP_CONFIG_FILE"] = os.devnull
    return out


def cache_dir() -> Path:
    root = os.environ.get("TRAINOPS_WHEEL_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainops" / "wheels"


def project_lock(project: Path, fam: ImageFamily) -> Path:
    """Where a user project's lock for `fam` lives: <project>/requirements.<family>.lock."""
    return Path(project) / f"requirements.{fam.name}.lock"


def project_requirements(project: Path, fam: ImageFamily) -> Path | None:
    """The project's requirements for `fam`: requirements.<family>.txt when it pins per image
    family (pip's markers cannot: they see this machine's Python), else requirements.txt."""
    for name in (f"requirements.{fam.name}.txt", PROJECT_REQUIREMENTS):
        if (Path(project) / name).is_file():
            return Path(project) / name
    return None


def lock_inputs(fam: ImageFamily, project: Path | None) -> dict[str, Path]:
    """The files a lock is generated from (recorded by name and sha256 in its header)."""
    inputs = {fam.requirements_in.name: fam.requirements_in}
    own = project_requirements(project, fam) if project is not None else None
    if own is not None:
        inputs[own.name] = own
    return inputs


def lock_command(project: Path | None) -> str:
    return f"`make lock PROJECT={project}`" if project is not None else "`make lock`"


def read_lock(fam: ImageFamily, project: Path | None = None) -> list[LockedWheel]:
    """The pins the bundle installs: the family's lock, or the project's when the project has a
    requirements.txt. Refuses a lock older than its inputs (one line saying what to run)."""
    inputs = lock_inputs(fam, project)
    own = len(inputs) > 1
    if own:
        path, where = project_lock(project, fam), str(project_lock(project, fam))
    else:
        path, where = fam.lock, f"training/requirements/{fam.lock.name}"
    run = f"run {lock_command(project if own else None)} (needs PyPI)"
    if not path.is_file():
        raise BundleError(f"{where} is missing: {run}")
    text = path.read_text()
    recorded = {m["name"]: m["sha"] for m in _DIGESTS.finditer(text.split("\n# The image", 1)[0])}
    for name, source in inputs.items():
        if recorded.get(name) != hashlib.sha256(source.read_bytes()).hexdigest():
            raise BundleError(f"{where} is out of date with {name}: {run}")
    wheels = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise BundleError(
                f"{where}:{number}: {line[:80]!r} is not `name==version --hash=sha256:... "
                f"# file.whl`: regenerate it: {run}"
            )
        wheels.append(LockedWheel(match["name"], match["version"], match["sha"], match["file"]))
    return wheels


#: The lock header line that records the image's closure as the lock resolved it.
IMAGE_CLOSURE_HEADER = "# The image's closure as resolved: "


def image_closure_versions(fam: ImageFamily) -> dict[str, str]:
    """Canonical name -> version of the packages the family's lock took the image to have (its
    header line; empty for a lock written before the line existed)."""
    for line in fam.lock.read_text().splitlines():
        if line.startswith(IMAGE_CLOSURE_HEADER):
            pins = (pin.partition("==") for pin in line[len(IMAGE_CLOSURE_HEADER) :].split())
            return {canonicalize_name(name): version for name, _, version in pins}
    return {}


def check_fits(wheels: list[LockedWheel], fam: ImageFamily, python: str) -> None:
    """Every package has a wheel that installs on the image's Python and platform (offline,
    from the file names; a package may also carry the rehearsal Python's wheel)."""
    supported = fam.supported_tags(python)
    by_name: dict[str, list[LockedWheel]] = {}
    for wheel in wheels:
        name, _, _, _ = parse_wheel_filename(wheel.filename)
        if canonicalize_name(wheel.name) != name:
            raise BundleError(f"{wheel.pin}: file {wheel.filename} is another package")
        by_name.setdefault(name, []).append(wheel)
    for group in by_name.values():
        if not any(parse_wheel_filename(w.filename)[3] & supported for w in group):
            wheel = group[0]
            abi = "cp" + python.replace(".", "")
            raise BundleError(
                f"{wheel.name}=={wheel.version} ({wheel.filename}) does not install on the "
                f"image's Python {python} / {fam.platform}: pin a version with a wheel for "
                f"{abi} or a py3-none-any wheel in {fam.requirements_in.name}, then `make lock`"
            )


def fetch(wheels: list[LockedWheel], fam: ImageFamily, root: Path | None = None) -> list[Path]:
    """Each wheel's cached path; missing ones downloaded once with pip (hash-checked), each for
    the Python its tags name (the image's, or the rehearsal's)."""
    root = root or cache_dir()
    missing = [w for w in wheels if not (root / w.sha256 / w.filename).is_file()]
    image_tags = fam.supported_tags()
    for target, group in (
        (fam, [w for w in missing if parse_wheel_filename(w.filename)[3] & image_tags]),
        (
            fam.for_python(REHEARSAL_PYTHON),
            [w for w in missing if not parse_wheel_filename(w.filename)[3] & image_tags],
        ),
    ):
        if group:
            _download(group, target, root)
    return [root / w.sha256 / w.filename for w in wheels]


def _download(wheels: list[LockedWheel], fam: ImageFamily, root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="wheelhouse-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{w.pin}\n" for w in wheels))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            *fam.pip_target_args(),
            "--dest",
            f"{tmp}/dl",
            "-r",
            str(req),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = [line for line in done.stderr.splitlines() if line.strip()][-1:]
            raise BundleError(
                f"cannot fetch {', '.join(w.name + '==' + w.version for w in wheels)} for "
                f"{fam.target} (needs PyPI once; later synths use {root}): {' '.join(last)}"
            )
        for wheel in wheels:  # pip checked every hash (--require-hashes)
            got = Path(tmp) / "dl" / wheel.filename
            if not got.is_file():
                raise BundleError(f"pip fetched no {wheel.filename} for {wheel.pin}")
            target = root / wheel.sha256 / wheel.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{wheel.filename}.partial")
            shutil.copyfile(got, partial)
            os.replace(partial, target)  # readers never see half a wheel


def requirements_text(wheels: list[LockedWheel], fam: ImageFamily, source: str = "") -> str:
    """The bundle's requirements.txt: the wheelhouse only, every file hash-pinned."""
    lines = [
        "# Installed by the SageMaker toolkit at job start, with no network: only the wheels in",
        f"# ./{WHEELHOUSE_DIR}/, for {fam.description}.",
        f"# Generated at synth from {source or 'training/requirements/' + fam.lock.name}.",
        "--no-index",
        f"--find-links {WHEELHOUSE_DIR}",
        *_pins(wheels),
    ]
    return "\n".join(lines) + "\n"


def _pins(wheels: list[LockedWheel]) -> list[str]:
    """One requirement per package, with the hash of every file it may install from."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for wheel in wheels:
        grouped.setdefault((wheel.name, wheel.version), []).append(wheel.sha256)
    return [
        f"{name}=={version} " + " ".join(f"--hash=sha256:{sha}" for sha in shas)
        for (name, version), shas in grouped.items()
    ]


def check_size(files: list[Path], limit: int = MAX_BUNDLE_BYTES) -> None:
    total = sum(f.stat().st_size for f in files)
    if total > limit:
        largest = sorted(files, key=lambda f: f.stat().st_size, reverse=True)[:3]
        named = ", ".join(f"{f.name} ({f.stat().st_size / 2**20:.0f} MiB)" for f in largest)
        raise BundleError(
            f"wheelhouse is {total / 2**20:.0f} MiB, above the {limit / 2**20:.0f} MiB a "
            f"job should download on every host; largest: {named}: drop what the image ships"
        )


def build(
    image_family: str, *, python: str | None = None, project: Path | None = None
) -> Wheelhouse:
    """The family's wheelhouse (with the project's requirements when it has any), checked
    against the image's Python (default: the family's)."""
    fam = family(image_family)
    wheels = read_lock(fam, project)
    own = len(lock_inputs(fam, project)) > 1
    source = project_lock(project, fam).name if own and project else ""
    check_fits(wheels, fam, python or fam.python)
    paths = fetch(wheels, fam)
    check_size(paths)
    return Wheelhouse(
        requirements=requirements_text(wheels, fam, source),
        wheels=tuple(sorted((p.name, p) for p in paths)),
    )
