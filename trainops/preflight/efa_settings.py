"""Which EFA settings the job gets on the run's instance type, and why (core/efa.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import efa
from core.image_contents import family_for_image
from trainops.preflight.findings import Finding, Target


def efa_finding(job_settings: Mapping[str, Any], target: Target) -> Finding:
    """The settings the deployed job carries against what the image's toolkit misses for the
    run's type: a run on a type the deployment did not plan for would fall back to TCP."""
    try:
        image_family = family_for_image(str(job_settings.get("image_uri") or ""))
    except ValueError:
        return Finding("efa", True, "not checked: the stack's image is not a pytorch-training tag")
    needed = efa.plan(image_family, target.instance_type)
    carried = dict(job_settings.get("efa_environment") or {})
    missing = {k: v for k, v in needed.environment.items() if carried.get(k) != v}
    shown = " ".join(f"{k}={v}" for k, v in sorted(needed.environment.items()))
    if not missing:
        detail = f"{needed.reason}" + (f" ({shown})" if shown else "")
        return Finding("efa", True, detail)
    return Finding(
        "efa",
        False,
        f"{needed.reason}, but the deployed job does not carry "
        + " ".join(f"{k}={v}" for k, v in sorted(missing.items()))
        + " (NCCL would fall back to TCP sockets)",
        f"redeploy with -c training.instance_type={target.instance_type}",
    )
