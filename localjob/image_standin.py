"""A stand-in for the training image: this interpreter with only what the image ships.

A local job must not see what the bundle has to bring (Lightning, torchmetrics, ...): the dev
venv has them all, so running jobs there would hide a bundle that cannot install. The stand-in
is a package folder holding links to this venv's copies of the image's packages (torch, numpy,
the toolkits, pip, ... and what they depend on), except where this venv's copy breaks the image
model's own specifiers (`numpy<2`, `urllib3<2`, `setuptools<81` on the 2.3.0 image): those come
at the version the lock resolved for the image, and so does every linked package whose
requirements they break (pandas 3.1 needs numpy>=2). Jobs then import the image's majors
(`np.ComplexWarning` exists; the 2.3.0 image's setuptools still has `pkg_resources`, which
Lightning 2.2.5 imports). torch stays this venv's CPU build (the rehearsal's one substitute). And
stand-ins for what exists only in AWS's images (SMDDP: localjob/smddp_standin, the `smddp`
process group over gloo with SMDDP's limits).
Each simulated host gets a fresh, pip-less venv that sees that folder through a `.pth` file, so
the toolkit's own `pip install -r requirements.txt` installs the bundle into the host's venv and
nothing leaks between hosts or jobs. Console scripts (`train`, `torchrun`, `pip`) are re-created
for the host's interpreter.

The folder is built once per family and venv, content-addressed under the wheel cache.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core import wheelhouse
from core.image_contents import ImageFamily, family

#: Present in every SageMaker PyTorch image besides the family's own list.
_ALWAYS = ("pip", "sagemaker-training", "sagemaker-pytorch-training", "torch")
#: Never replaced by the image's version: the rehearsal runs this venv's CPU torch.
_KEEP = frozenset({"torch"})
#: Packages of the image that exist only inside AWS's images, as local stand-ins (linked in).
STAND_INS = {"smddp": (Path(__file__).resolve().parent / "smddp_standin" / "smdistributed",)}


@dataclass(frozen=True)
class ImageStandIn:
    family: str
    site: Path  # the image's packages
    scripts: tuple[tuple[str, str], ...]  # console scripts: (name, "module:attr")

    def host_env(self, dest: Path) -> Path:
        """A fresh venv at `dest` that sees the image's packages; returns its bin folder."""
        if dest.exists():
            shutil.rmtree(dest)
        venv.EnvBuilder(with_pip=False, symlinks=True).create(dest)
        purelib = Path(
            sysconfig.get_path("purelib", vars={"base": str(dest), "platbase": str(dest)})
        )
        purelib.mkdir(parents=True, exist_ok=True)
        (purelib / "_image_standin.pth").write_text(
            f"import site; site.addsitedir({str(self.site)!r})\n"
        )
        bindir = dest / "bin"
        for name, target in self.scripts:
            script = bindir / name
            module, _, attr = target.partition(":")
            head, _, rest = attr.partition(".")
            call = f"{head}.{rest}" if rest else head
            script.write_text(
                f"#!{bindir / 'python'}\nimport sys\nfrom {module} import {head}\n"
                f"sys.exit({call}())\n"
            )
            script.chmod(0o755)
        return bindir


@functools.cache
def image_standin(family_name: str) -> ImageStandIn:
    """The stand-in for `family_name`: built on first use on this machine (atomically, so
    concurrent jobs agree), looked up once per process."""
    fam = family(family_name)
    # The image's packages and everything the lock took the image to have, as far as this venv
    # has them; less what only the bundle brings (an image package the bundle brings at another
    # version stays: the image has one, the bundle's install replaces it in the host).
    resolved = wheelhouse.image_closure_versions(fam)
    closure = set(resolved)
    brought = _brought_by_bundle(fam) - closure
    roots = [*(Requirement(r).name for r in fam.ships), *_ALWAYS, *closure]
    names = sorted(_closure(roots) - brought)
    overrides = _replacements(fam, set(names), resolved)
    stand_ins = STAND_INS.get(fam.name, ())
    # Versions are in the key: an upgraded venv package gets a new folder, never a dangling link.
    pins = [f"{name}=={md.version(name)}" for name in names]
    parts = [sys.prefix, *pins, *overrides, *map(str, stand_ins)]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    site = wheelhouse.cache_dir().parent / "standins" / f"{fam.name}-{key}"
    if not site.is_dir():
        _build_site(site, names, overrides, stand_ins)
    return ImageStandIn(fam.name, site, tuple(sorted(_console_scripts(site).items())))


def _replacements(fam: ImageFamily, names: set[str], resolved: dict[str, str]) -> tuple[str, ...]:
    """`name==version` pins, at the versions the lock resolved for the image, for the image's
    packages whose copy here breaks the family's specifiers, then for linked packages whose
    requirements those pins break (until none does). Only where the lock was resolved for this
    Python: another Python's closure may name versions with no wheel here."""
    if fam.python != f"{sys.version_info.major}.{sys.version_info.minor}":
        return ()
    replaced: dict[str, str] = {}
    for line in fam.ships:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        usable = name in names and name in resolved and name not in _KEEP
        if usable and not req.specifier.contains(md.version(name), prereleases=True):
            replaced[name] = resolved[name]
    while broken := [
        name
        for name in sorted(names - replaced.keys() - _KEEP)
        if name in resolved and _breaks(name, replaced)
    ]:
        replaced.update((name, resolved[name]) for name in broken)
    return tuple(f"{name}=={version}" for name, version in sorted(replaced.items()))


def _breaks(name: str, replaced: dict[str, str]) -> bool:
    """Whether the installed `name` requires a replaced package at another version."""
    for line in md.requires(name) or []:
        req = Requirement(line)
        dep = canonicalize_name(req.name)
        applies = dep in replaced and (req.marker is None or req.marker.evaluate({"extra": ""}))
        if applies and not req.specifier.contains(replaced[dep], prereleases=True):
            return True
    return False


def _brought_by_bundle(fam: ImageFamily) -> set[str]:
    """Every package the family's bundle carries: those the image lacks (Lightning,
    torchmetrics, ...) are never part of its stand-in, so a bundle that lacks one fails here as
    on AWS."""
    return {canonicalize_name(w.name) for w in wheelhouse.read_lock(fam)}


def _closure(roots: list[str]) -> set[str]:
    """Canonical names of the installed distributions `roots` need, extras followed
    (`fsspec[http]` brings aiohttp)."""
    seen: set[tuple[str, str]] = set()
    found: set[str] = set()
    todo = [(canonicalize_name(r), "") for r in roots]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # not in this venv: the image has it, jobs here do without it
        found.add(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo.append((canonicalize_name(req.name), ""))
                todo += [(canonicalize_name(req.name), e) for e in req.extras]
    return found


def _build_site(
    site: Path, names: list[str], overrides: tuple[str, ...], stand_ins: tuple[Path, ...]
) -> None:
    tmp = site.with_name(f".{site.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for package in stand_ins:
        (tmp / package.name).symlink_to(package)
    replaced = {canonicalize_name(Requirement(o).name) for o in overrides}
    for name in names:
        if name in replaced:
            continue
        dist = md.distribution(name)
        base = Path(str(dist.locate_file("")))
        for top in sorted({Path(str(f)).parts[0] for f in dist.files or []} - {".."}):
            link = tmp / top
            if not link.exists() and (base / top).exists():
                link.symlink_to(base / top)
    if overrides:
        install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
        done = subprocess.run(
            [*install, str(tmp), *overrides],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"image stand-in: cannot install {' '.join(overrides)} (needs PyPI once): "
                + (done.stderr.strip().splitlines() or ["?"])[-1]
            )
    try:
        os.replace(tmp, site)
    except OSError:  # another job built it first
        shutil.rmtree(tmp, ignore_errors=True)


def _console_scripts(site: Path) -> dict[str, str]:
    scripts = {}
    for dist in md.distributions(path=[str(site)]):
        for ep in dist.entry_points:
            if ep.group == "console_scripts":
                scripts[ep.name] = ep.value
    return scripts
