"""What the runner does so that any user module runs on SMDDP, and the line when it cannot.

SMDDP refuses `ReduceOp.AVG` (`RuntimeError: SMDDP does not support: ReduceOp`), yet Lightning
reduces a `self.log(..., sync_dist=True)` mean with AVG on every backend but gloo. The runner
wraps the strategy's `reduce` (the one hook Lightning's logging, and anything else that asks the
strategy for a mean, goes through): under smddp a mean is a SUM then a division by the group's
size, as Lightning does on gloo, so the values equal NCCL's AVG. Other reductions (sum, min,
max) and torchmetrics' syncs (all_gather) pass unchanged.

A collective that SMDDP cannot do at all (AVG called directly, `new_group`, a second backend)
still fails; `explain` turns SMDDP's message into one line naming it and what to do.
"""

from __future__ import annotations

from typing import Any

#: The start of SMDDP's refusals (and of the rehearsal stand-in's).
REFUSED = "SMDDP does not support: "
_ADVICE = {
    "ReduceOp": "a reduction asked for ReduceOp.AVG, which SMDDP lacks: reduce with "
    "ReduceOp.SUM and divide by the world size (self.log(..., sync_dist=True) is made safe "
    "by the runner; a direct torch.distributed call is not)",
    "new_group": "torch.distributed.new_group() has no SMDDP equivalent: use the default "
    "(world) group",
    "a second backend": "SMDDP cannot run beside another process group: keep every "
    "collective on the default group",
}
_ELSE = "deploy with backend=torchrun (NCCL) if the code needs it"


def _is_mean(reduce_op: object) -> bool:
    if isinstance(reduce_op, str):
        return reduce_op.lower() in ("mean", "avg")
    import torch.distributed as dist

    return reduce_op == dist.ReduceOp.AVG


def protect(strategy: Any, backend: str | None) -> None:
    """Under smddp, make `strategy.reduce` compute a mean as SUM + divide (in place, as
    Lightning's own gloo path does); any other backend keeps Lightning's reduce."""
    if backend != "smddp":
        return
    import torch
    import torch.distributed as dist

    lightning_reduce = strategy.reduce

    def reduce(tensor: Any, group: Any = None, reduce_op: Any = "mean") -> Any:
        if not (isinstance(tensor, torch.Tensor) and _is_mean(reduce_op)):
            return lightning_reduce(tensor, group, reduce_op)
        total = lightning_reduce(tensor, group, "sum")
        if not (dist.is_available() and dist.is_initialized()):
            return total
        size = dist.get_world_size(group)
        if torch.is_floating_point(total):
            return total.div_(size)
        return total.copy_(total / size)

    strategy.reduce = reduce


def explain(err: BaseException) -> str | None:
    """One line for an SMDDP refusal (its own message first), or None."""
    text = str(err)
    if REFUSED not in text:
        return None
    what = text.split(REFUSED, 1)[1].strip()
    advice = next((a for key, a in _ADVICE.items() if what.startswith(key)), None)
    head = f"{REFUSED}{what.split(' (', 1)[0]}"
    return f"{head}: {advice or 'SMDDP lacks this collective'}; or {_ELSE}"
