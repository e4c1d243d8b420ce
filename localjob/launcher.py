"""The launcher a local job runs, for a request that names SMDDP's.

SMDDP's launcher (the toolkit's `sagemaker_distributed_dataparallel_enabled`: mpirun +
smddprun) needs sshd and AWS's own binaries, so this machine cannot start it. A local job that
asks for it runs the same hosts under torchrun instead, with its process group still `smddp`:
the runner imports SMDDP from the image, which in the SMDDP family's stand-in is
localjob/smddp_standin (gloo with SMDDP's limits). So the collectives SMDDP refuses on AWS are
refused here too; only the launcher differs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from training import contract

SMDDP_FLAG = contract.LAUNCHER_FLAGS["smddp"]
TORCHRUN_FLAG = contract.LAUNCHER_FLAGS["torchrun"]
BACKEND_KEY = "process_group_backend"
NOTE = (
    "SMDDP launcher (mpirun + smddprun) rehearsed as torchrun; process group smddp "
    "(stand-in: gloo with SMDDP's limits)"
)


def _value(raw: str) -> object:
    """A hyperparameter as the toolkit reads it (JSON-decoded where it parses)."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def rehearsed(hyperparameters: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """The hyperparameters the local hosts get, and a note when the launcher was swapped."""
    params = dict(hyperparameters)
    flag = _value(params.get(SMDDP_FLAG, "false"))
    if flag is not True and str(flag).lower() != "true":
        return params, None
    del params[SMDDP_FLAG]
    params[TORCHRUN_FLAG] = "true"
    if _value(params.get(BACKEND_KEY, "auto")) == "auto":
        params[BACKEND_KEY] = "smddp"
    return params, NOTE
