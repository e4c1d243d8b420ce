"""Stand-in for SMDDP's process-group backend, for the rehearsal on CPU.

SMDDP (`smdistributed.dataparallel`) ships only inside AWS's PyTorch 2.0.1-2.3.0 GPU images and
is closed source. The local executor puts this package at SMDDP's import path in the SMDDP image
family's stand-in, so the runner's `import smdistributed.dataparallel.torch.torch_smddp`
registers the `smddp` backend as it does on AWS. Collectives run over gloo; what SMDDP refuses
is refused here, with SMDDP's own message where one is known:

- `ReduceOp.AVG` in any reduction: `RuntimeError: SMDDP does not support: ReduceOp` (the line
  Lightning users meet on AWS; aws/amazon-sagemaker-examples#3967).
- `torch.distributed.new_group()`: SMDDP has no subgroups.
- a second backend: no process group of another backend beside smddp.
"""

from __future__ import annotations

import functools
import inspect

import torch.distributed as dist
from torch.distributed import distributed_c10d as c10d

BACKEND = "smddp"
#: The prefix of every refusal (SMDDP's own wording), which the runner explains in one line.
REFUSED = "SMDDP does not support: "
_REDUCTIONS = ("all_reduce", "reduce", "reduce_scatter", "reduce_scatter_tensor")


def _create(store, rank, size, timeout):
    return dist.ProcessGroupGloo(store, rank, size, timeout)


def _on_smddp(group) -> bool:
    return dist.is_initialized() and dist.get_backend(group) == BACKEND


def _no_avg(fn):
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def reduction(*args, **kwargs):
        call = signature.bind_partial(*args, **kwargs).arguments
        if call.get("op") == dist.ReduceOp.AVG and _on_smddp(call.get("group")):
            raise RuntimeError(REFUSED + "ReduceOp")
        return fn(*args, **kwargs)

    return reduction


def _no_new_group(*args, **kwargs):
    raise RuntimeError(REFUSED + "new_group (SMDDP has no process subgroups)")


def _only_smddp(init):
    @functools.wraps(init)
    def init_process_group(backend=None, *args, **kwargs):
        if str(backend).lower() != BACKEND:
            raise RuntimeError(f"{REFUSED}a second backend ({backend!r} beside smddp in one job)")
        return init(backend, *args, **kwargs)

    return init_process_group


def _install() -> None:
    dist.Backend.register_backend(BACKEND, _create, devices=["cpu"])
    for module in (dist, c10d):
        for name in _REDUCTIONS:
            setattr(module, name, _no_avg(getattr(c10d, name)))
        module.new_group = _no_new_group
        module.init_process_group = _only_smddp(c10d.init_process_group)


if BACKEND not in dist.Backend.backend_list:
    _install()
