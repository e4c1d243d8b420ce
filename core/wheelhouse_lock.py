"""`make lock`: resolve what each image family's jobs need into a hashed wheel lock.

    python -m core.wheelhouse_lock [FAMILY ...]      (needs PyPI; synth never does)

For each family, pip resolves for the image's Python and platform, binary wheels only: first
the image's own packages alone (closure A: once per image and machine, kept under the wheel
cache's `resolutions/`; it downloads torch and its CUDA wheels to read their metadata), then the
image's packages plus `training/requirements/<family>.in` (and a project's requirements) with
every package of A a metadata-only stub wheel pinned by URL (closure B: no torch download, and
pip asks PyPI only about what the lines add; a package the lines need older is freed, see
`resolve_with_image`). The families resolve side by side; a re-lock after a one-line change
runs pip once per family. The lock is
what B needs for those lines, less the image's certain packages at the image's version: those
its build files name (`core/image_contents.py`) and what they pin exactly. A line that
contradicts the image's pins fails B, and the lock fails with pip's own conflict lines.

Where a locked version also publishes a pure-Python wheel (`py3-none-any`), that one is pinned
in place of a CPython extension wheel: it fits every image family's Python and the emulator's,
and the packages concerned (aiohttp and its helpers) are not on the training hot path. A platform
wheel tied to no CPython ABI (`py3-none-manylinux_...`: soundfile's) is kept: it carries a native
library (libsndfile) that its pure twin expects from the system, and no image installs it.

Each line is a pip requirement pinned to one file's sha256, with the file name as a comment
(synth checks its tags offline). The header records the .in file's sha256, so a stale lock fails
synth with one line.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from core import wheelhouse
from core.image_contents import FAMILIES, REHEARSAL_PYTHON, ImageFamily, family
from core.wheelhouse import cache_dir, clean_pip_env, lock_command, lock_inputs, project_lock

#: PEP 691 JSON form of PyPI's simple index (files of every version, with sha256 digests).
PYPI_SIMPLE = "https://pypi.org/simple/{name}/"


def pip_env() -> dict[str, str]:
    """pip with no machine-local config (mirrors, find-links, constraints): the lock must name
    what PyPI serves, for anyone."""
    return {**clean_pip_env(os.environ), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


class ResolutionFailed(Exception):
    """pip found no resolution; the message is pip's reason on one line."""


def _key(kind: str, fam: ImageFamily, lines: list[str]) -> str:
    return hashlib.sha256("\n".join([kind, *fam.pip_target_args(), *lines]).encode()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


def _cached(kind: str, fam: ImageFamily, lines: list[str], compute) -> dict[str, dict]:
    """A resolution kept under the wheel cache by its inputs (pip, image, lines)."""
    path = cache_dir().parent / "resolutions" / f"{_key(kind, fam, lines)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out = compute()
    _write_atomic(path, json.dumps(out, sort_keys=True))
    return out


def _pip_install_report(
    fam: ImageFamily, lines: list[str], options: list[str], python: list[str], env: dict[str, str]
) -> dict[str, dict]:
    """pip's dry-run install of `lines` for the image's platform, as name -> entry."""
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("\n".join(lines) + "\n")
        report = Path(tmp) / "report.json"
        cmd = [*python, "-m", "pip", "install", "--dry-run", *fam.pip_target_args()]
        cmd += [*(o.replace("{tmp}", tmp) for o in options), f"--report={report}", "-r", str(req)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ResolutionFailed(pip_reason(done.stdout, done.stderr))
        items = json.loads(report.read_text())["install"]
    out = {}
    for item in items:
        meta, info = item["metadata"], item["download_info"]
        algo, _, digest = info["archive_info"]["hash"].partition("=")
        assert algo == "sha256", info
        out[canonicalize_name(meta["name"])] = {
            "name": meta["name"],
            "version": meta["version"],
            "url": info["url"],
            "sha256": digest,
            "requires_dist": meta.get("requires_dist", []),
        }
    return out


def resolve_image(fam: ImageFamily) -> dict[str, dict]:
    """The image's own packages and their closure (once per image and machine: it downloads
    torch and its CUDA wheels to read their metadata)."""
    lines = list(fam.ships)
    options = ["--ignore-installed", "--target={tmp}/target"]
    return _cached(
        "image",
        fam,
        lines,
        lambda: _pip_install_report(fam, lines, options, [sys.executable], pip_env()),
    )


def resolve_with_image(
    fam: ImageFamily, image: dict[str, dict], wanted: list[str]
) -> dict[str, dict]:
    """pip's resolution of the image's packages plus `wanted`. Each package of the image's
    closure is a metadata-only stub wheel (tagged for the image), so pip reads no torch or CUDA
    wheel again and only what `wanted` adds comes from PyPI.

    Each stub is first pinned by URL, so pip asks PyPI nothing about the image's ~70 packages
    (asking is most of a re-lock's time). Where `wanted` needs an image package at another
    version, pip's conflict names it: that one is freed (offered as a stub, capped at the
    image's version, older from PyPI where needed) and pip runs again; after a few rounds all
    are freed, so the answer and the error are pip's own either way."""

    pinned = [f"{name}=={entry['version']}" for name, entry in sorted(image.items())]
    # What the last lock for this image had to free (a runner pin, e.g. lightning's fsspec cap,
    # stays across a project's re-locks): start from there.
    freed = cache_dir().parent / "resolutions" / f"freed-{_key('freed', fam, pinned)}.json"

    def compute() -> dict[str, dict]:
        free = set(json.loads(freed.read_text())) & set(image) if freed.is_file() else set()
        for _ in range(_FREEING_ROUNDS):
            try:
                out = _resolve_on_stubs(fam, image, wanted, free)
            except ResolutionFailed as exc:
                named = _named_in(str(exc), set(image) - free)
                if not named:
                    break
                free |= named
            else:
                _write_atomic(freed, json.dumps(sorted(free)))
                return out
        return _resolve_on_stubs(fam, image, wanted, set(image))

    return _cached("with-image-3", fam, [*pinned, *wanted], compute)


#: Rounds of freeing the image packages a conflict names before freeing them all.
_FREEING_ROUNDS = 3


def _named_in(reason: str, names: set[str]) -> set[str]:
    """The (canonical) package names a pip message mentions."""
    words = set(re.findall(r"[a-z0-9][a-z0-9._-]*", reason.lower()))
    return {n for n in names if n in {canonicalize_name(w) for w in words}}


def _resolve_on_stubs(
    fam: ImageFamily, image: dict[str, dict], wanted: list[str], free: set[str]
) -> dict[str, dict]:
    """pip's resolution with the image packages in `free` offered as stubs and never newer than
    the image has (PyPI moves on after the image is resolved), the others pinned to theirs."""
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp) / "image-stubs"
        stubs.mkdir()
        wheels = {name: _stub_wheel(stubs, fam, entry) for name, entry in image.items()}
        ceiling = Path(tmp) / "image-ceiling.txt"
        ceiling.write_text("".join(f"{e['name']}<={e['version']}\n" for e in image.values()))
        options = ["--ignore-installed", "--target={tmp}/target", f"--find-links={stubs}"]
        options.append(f"--constraint={ceiling}")
        pins = [f"{image[n]['name']} @ {wheels[n].as_uri()}" for n in sorted(set(image) - free)]
        # A ships line makes pip ask PyPI about its package even when pinned: only freed ones.
        ships = [s for s in fam.ships if canonicalize_name(Requirement(s).name) in free]
        lines = [*ships, *pins, *wanted]
        return _pip_install_report(fam, lines, options, [sys.executable], pip_env())


_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def _stub_wheel(folder: Path, fam: ImageFamily, entry: dict) -> Path:
    """A wheel holding only the entry's metadata (name, version, dependencies)."""
    name = canonicalize_name(entry["name"]).replace("-", "_")
    info = f"{name}-{entry['version']}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {entry['name']}", f"Version: {entry['version']}"]
    meta += [f"Requires-Dist: {r}" for r in entry.get("requires_dist", [])]
    # pip honours `pkg[extra]` only for extras the metadata declares.
    extras = {m for r in entry.get("requires_dist", []) for m in _EXTRA.findall(r)}
    meta += [f"Provides-Extra: {e}" for e in sorted(extras)]
    tag = f"{fam.abi}-{fam.abi}-{fam.platform}"
    wheel = ["Wheel-Version: 1.0", "Generator: trainops-lock", "Root-Is-Purelib: false"]
    files = {f"{info}/METADATA": meta, f"{info}/WHEEL": [*wheel, f"Tag: {tag}"]}
    wheel_path = folder / f"{name}-{entry['version']}-{tag}.whl"
    with zipfile.ZipFile(wheel_path, "w") as zf:
        for path, lines in files.items():
            zf.writestr(path, "\n".join(lines) + "\n")
        zf.writestr(f"{info}/RECORD", "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"]))
    return wheel_path


def pip_reason(stdout: str, stderr: str) -> str:
    """pip's own account of a failed resolution, on one line: its `Cannot install ...` error
    and its conflict lines (`The conflict is caused by: ...`, printed on stdout), else its last
    error line."""
    errors = [line.strip() for line in stderr.splitlines() if line.startswith("ERROR:")]
    out = [line.strip() for line in stdout.splitlines()]
    conflict: list[str] = []
    if "The conflict is caused by:" in out:
        for line in out[out.index("The conflict is caused by:") :]:
            if not line and len(conflict) > 1:
                break
            if line:
                conflict.append(line)
    cannot = [e.removeprefix("ERROR: ") for e in errors if e.startswith("ERROR: Cannot install")]
    if conflict:
        return " ".join([*cannot, conflict[0], "; ".join(conflict[1:])])
    return (errors or [line for line in stderr.splitlines() if line.strip()] or ["pip failed"])[-1]


def prefer_pure(entry: dict[str, str]) -> dict[str, str]:
    """The same version's py3-none-any wheel in place of a CPython extension wheel, when PyPI
    has one; a wheel with no CPython ABI (pure, or bundling a native library) as it is."""
    filename = entry["url"].rsplit("/", 1)[-1]
    if filename.endswith(".whl") and all(
        t.abi == "none" for t in parse_wheel_filename(filename)[3]
    ):
        return entry
    for f in _pypi_files(entry["name"]):
        name, version, _, tags = (
            parse_wheel_filename(f["filename"])
            if f["filename"].endswith(".whl")
            else (None, None, None, frozenset())
        )
        pure = any(t.abi == "none" and t.platform == "any" for t in tags)
        if pure and name == canonicalize_name(entry["name"]) and str(version) == entry["version"]:
            return {**entry, "url": f["url"], "sha256": f["hashes"]["sha256"]}
    return entry


def pypi_wheel(entry: dict[str, str], fam: ImageFamily) -> dict[str, str]:
    """PyPI's wheel of the entry's version for the image's Python and platform."""
    supported = fam.supported_tags()
    for f in _pypi_files(entry["name"]):
        if not f["filename"].endswith(".whl"):
            continue
        name, version, _, tags = parse_wheel_filename(f["filename"])
        same = name == canonicalize_name(entry["name"]) and str(version) == entry["version"]
        if same and tags & supported:
            return {**entry, "url": f["url"], "sha256": f["hashes"]["sha256"]}
    raise SystemExit(
        f"lock {fam.name}: {entry['name']}=={entry['version']} has no wheel on PyPI for "
        f"{fam.target}"
    )


def rehearsal_wheel(entry: dict[str, str], fam: ImageFamily) -> dict[str, str] | None:
    """The same version's wheel for the rehearsal Python, when the locked one does not install
    there (binary wheels for the image's Python only); None when it does."""
    rehearsal = fam.supported_tags(REHEARSAL_PYTHON)
    filename = entry["url"].rsplit("/", 1)[1]
    if fam.python == REHEARSAL_PYTHON or parse_wheel_filename(filename)[3] & rehearsal:
        return None
    for f in _pypi_files(entry["name"]):
        if not f["filename"].endswith(".whl"):
            continue
        name, version, _, tags = parse_wheel_filename(f["filename"])
        if (
            name == canonicalize_name(entry["name"])
            and str(version) == entry["version"]
            and tags & rehearsal
        ):
            return {**entry, "url": f["url"], "sha256": f["hashes"]["sha256"]}
    raise SystemExit(
        f"lock {fam.name}: {entry['name']}=={entry['version']} has no wheel for the rehearsal "
        f"Python {REHEARSAL_PYTHON}: pin another version"
    )


@functools.cache
def _pypi_files(name: str) -> list[dict]:
    request = urllib.request.Request(
        PYPI_SIMPLE.format(name=canonicalize_name(name)),
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["files"]


def requirement_lines(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def in_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lock_family(fam: ImageFamily, project: Path | None = None) -> str:
    """The lock file's text for one family (and a user project's requirements.txt, if any)."""
    inputs = lock_inputs(fam, project)
    wanted = [line for path in inputs.values() for line in requirement_lines(path)]
    for line in wanted:
        if line.startswith("-"):
            raise SystemExit(
                f"lock {fam.name}: {line!r}: only requirement lines (name==version) are "
                "supported; the bundle's own requirements.txt sets the pip options"
            )
    try:
        image = resolve_image(fam)
    except ResolutionFailed as exc:
        raise SystemExit(
            f"lock {fam.name}: the image's own packages do not resolve: {exc}"
        ) from None
    try:
        both = resolve_with_image(fam, image, wanted)
    except ResolutionFailed as exc:
        raise SystemExit(
            f"lock {fam.name}: {' / '.join(inputs)} contradict(s) the image ({fam.description}) "
            f"or each other, for {fam.target}: {exc}"
        ) from None
    entries = []
    for name in sorted(brought(fam, image, both, wanted)):
        entry = prefer_pure(both[name])
        if entry["url"].startswith("file:"):  # pip read it from the image's stub
            entry = pypi_wheel(entry, fam)
        entries.append(entry)
        extra = rehearsal_wheel(entry, fam)
        if extra is not None:
            entries.append(extra)
    header = [
        f"# Wheelhouse lock, image family {fam.name!r}: {fam.description} ({fam.target}).",
        f"# Generated by {lock_command(project if len(inputs) > 1 else None)} from "
        + " and ".join(f"{name} (sha256 {in_digest(path)})" for name, path in inputs.items())
        + "; do not edit.",
        "# The image already ships (with their dependencies): "
        + ", ".join(Requirement(s).name for s in fam.ships),
        wheelhouse.IMAGE_CLOSURE_HEADER
        + " ".join(f"{e['name']}=={e['version']}" for _, e in sorted(image.items())),
    ]
    body = [
        f"{e['name']}=={e['version']} --hash=sha256:{e['sha256']}  # {e['url'].rsplit('/', 1)[1]}"
        for e in entries
    ]
    return "\n".join(header + body) + "\n"


def _target_markers(fam: ImageFamily, extra: str) -> dict[str, str]:
    env = default_environment()
    env.update(python_version=fam.python, python_full_version=f"{fam.python}.0", extra=extra)
    env.update(sys_platform="linux", platform_system="Linux", platform_machine="x86_64")
    return env


def _requirements(fam: ImageFamily, entry: dict, extras: frozenset[str]) -> list[Requirement]:
    """The entry's dependencies that apply on the image (with the extras asked of it)."""
    out = []
    for line in entry.get("requires_dist", []):
        req = Requirement(line)
        if req.marker is None or any(
            req.marker.evaluate(_target_markers(fam, e)) for e in ("", *extras)
        ):
            out.append(req)
    return out


def certain(fam: ImageFamily, image: dict[str, dict]) -> set[str]:
    """The image packages the lock may rely on: those its build files name, and what they pin
    exactly (torch's CUDA wheels). Anything else in the resolved closure is a guess (PyPI's
    newest today, not what the image was built with), so a job that needs it brings it."""
    found = {canonicalize_name(Requirement(line).name) for line in fam.ships}
    todo = [n for n in found if n in image]
    while todo:
        for req in _requirements(fam, image[todo.pop()], frozenset()):
            name = canonicalize_name(req.name)
            exact = any(spec.operator == "==" for spec in req.specifier)
            if exact and name in image and name not in found:
                found.add(name)
                todo.append(name)
    return found


def brought(
    fam: ImageFamily, image: dict[str, dict], both: dict[str, dict], wanted: list[str]
) -> list[str]:
    """What the bundle must carry: every package `wanted` needs (transitively, on the image's
    platform), except the image's certain packages at the version the image has. So torch and
    the build files' packages never come; an image package the job needs at another version,
    or one the image only might have, does."""
    sure = certain(fam, image)
    provided = {n for n in sure if n in both and both[n]["version"] == image[n]["version"]}
    needed: set[str] = set()
    todo = [
        (canonicalize_name(Requirement(w).name), frozenset(Requirement(w).extras)) for w in wanted
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in both:
            continue
        seen.add((name, extras))
        reqs = _requirements(fam, both[name], extras)
        if name in provided:  # the image's copy; only what the asked extras add is needed
            base = {str(r) for r in _requirements(fam, both[name], frozenset())}
            reqs = [r for r in reqs if str(r) not in base]
        else:
            needed.add(name)
        todo += [(canonicalize_name(r.name), frozenset(r.extras)) for r in reqs]
    return sorted(needed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="*", metavar="FAMILY", help=", ".join(FAMILIES))
    parser.add_argument(
        "--project",
        type=Path,
        help="a user project (training.source_dir): lock its requirements.txt with the runner's",
    )
    args = parser.parse_args(argv)
    project = args.project
    if project is not None and not any(project.glob("requirements*.txt")):
        raise SystemExit(f"{project}: no requirements.txt (or requirements.<family>.txt) to lock")
    fams = [family(name) for name in args.families or list(FAMILIES)]
    # Each family's pip runs on its own (most of a re-lock is pip's CPU): side by side.
    with ThreadPoolExecutor(max_workers=len(fams)) as pool:
        texts = [pool.submit(lock_family, fam, project) for fam in fams]
    for fam, done in zip(fams, texts, strict=True):
        text = done.result()
        target = project_lock(project, fam) if project else fam.lock
        target.write_text(text)
        count = sum(1 for line in text.splitlines() if not line.startswith("#"))
        print(f"{target}: {count} wheels for {fam.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
