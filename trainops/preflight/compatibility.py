"""Whether the stack's backend and image fit the instance type: SMDDP runs on a few types only,
and a CPU image on a GPU type (or the reverse) wastes or fails the run.
"""

from __future__ import annotations

import re

from core import config as rules
from core.config import ConfigError
from core.instance_types import SMDDP_INSTANCE_TYPES
from trainops.preflight.findings import Finding, Target, _plural


def backend_finding(backend: str, target: Target) -> Finding:
    """The stack's backend on this instance type (SMDDP runs on a few types only)."""
    try:
        rules.resolve_backend(backend, target.instance_type, target.instance_count)
    except ConfigError as exc:
        if backend == "smddp":
            fix = (
                f"use one of {', '.join(SMDDP_INSTANCE_TYPES)} or redeploy with"
                " -c training.backend=torchrun"
            )
        else:
            fix = "use --instance-count 1 or redeploy with -c training.backend=torchrun"
        return Finding("backend", False, str(exc), fix)
    detail = f"{backend} runs on {target.instance_type}"
    if backend == "smddp":
        detail += f" (SMDDP: {', '.join(SMDDP_INSTANCE_TYPES)})"
    return Finding("backend", True, detail)


_DLC_PROCESSOR = re.compile(r":[0-9.]+-(cpu|gpu)-")


def image_finding(image_uri: str | None, instance_type: str) -> Finding:
    """The stack's image is built for CPU or GPU instances (picked at synth for its type)."""
    match = _DLC_PROCESSOR.search(image_uri or "")
    if not match:
        return Finding("image", True, f"not a DLC tag, not checked: {image_uri or 'unknown'}")
    processor = match.group(1)
    gpus = rules.gpus_per_instance(instance_type)
    tag = image_uri.rsplit("/", 1)[-1]
    on = f"{instance_type} ({_plural(gpus, 'GPU')})"
    if (processor == "gpu") == (gpus > 0):
        return Finding("image", True, f"{tag} fits {on}")
    why = "its GPUs would sit idle, billed" if gpus else "the GPU image needs a GPU"
    return Finding(
        "image",
        False,
        f"{tag} is a {processor.upper()} image; {on}: {why}",
        f"redeploy with -c training.instance_type={instance_type} (the stack picks the image for"
        f" its instance type) or use a {'GPU' if processor == 'gpu' else 'CPU'} instance type",
    )
