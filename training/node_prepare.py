"""prepare_data once per node under smddp, without a torch.distributed barrier.

Lightning runs the `prepare_data` hooks on local rank 0 and then waits in a barrier over a new
gloo process group (`_InfiniteBarrier`: torch.distributed.new_group), which smddp cannot open.
Under smddp the runner calls the hooks itself before fit: local rank 0 prepares and leaves a
marker file in the node's cache folder (or the one-line error it failed with), the other local
ranks wait for it; then the hooks are replaced by the base class's no-op, so Lightning sees
them un-overridden and opens no group.
"""

from __future__ import annotations

import logging
import time
import types
from pathlib import Path
from typing import Any

from training.atomic import atomic_write_bytes
from training.errors import TrainingError

log = logging.getLogger(__name__)


class PrepareError(TrainingError, RuntimeError):
    """prepare_data failed on this node (the message is local rank 0's error line)."""


def _overridden(obj: Any, base: type) -> bool:
    hook = getattr(type(obj), "prepare_data", None)
    return hook is not None and hook is not getattr(base, "prepare_data", None)


def prepare_on_node(
    pl: Any,
    objects: list[Any],
    *,
    is_local_zero: bool,
    marker_dir: Path,
    job_name: str,
    timeout_s: float,
) -> None:
    """Run each object's prepare_data once on this node, then disarm the hooks."""
    hooked = [
        obj
        for obj in objects
        if obj is not None
        and _overridden(obj, pl.LightningDataModule if _is_dm(pl, obj) else pl.LightningModule)
    ]
    if not hooked:
        return
    done = Path(marker_dir) / f".prepared-{job_name}.done"
    failed = done.with_suffix(".failed")
    if is_local_zero:
        failed.unlink(missing_ok=True)
        try:
            for obj in hooked:
                obj.prepare_data()
        except Exception as err:
            atomic_write_bytes(failed, f"{type(err).__name__}: {err}".encode())
            raise
        atomic_write_bytes(done, b"ok\n")
    else:
        deadline = time.monotonic() + timeout_s
        while not done.exists():
            if failed.exists():
                raise PrepareError(f"prepare_data failed on local rank 0: {failed.read_text()}")
            if time.monotonic() > deadline:
                raise PrepareError(
                    f"prepare_data did not finish on local rank 0 within {timeout_s:.0f} s "
                    f"(no {done})"
                )
            time.sleep(0.1)
    for obj in hooked:
        base = pl.LightningDataModule if _is_dm(pl, obj) else pl.LightningModule
        obj.prepare_data = types.MethodType(base.prepare_data, obj)


def _is_dm(pl: Any, obj: Any) -> bool:
    return isinstance(obj, pl.LightningDataModule)
