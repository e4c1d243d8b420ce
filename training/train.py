"""Entry point of the training job (the toolkit's `sagemaker_program`: training/train.py).

Runs as `python training/train.py --config digits --epochs 10 ...` from the code root (SageMaker,
any launcher) and as `python -m training.train ...` locally. Flow: read the SageMaker contract,
work out the cluster, parse the task config with its overrides (training/task.py: a bad key or
value fails here, before any data is read), build the Trainer for the cluster, fit (resuming
from last.ckpt when there is one), validate, and write the model from global rank 0 alone
(training/export.py).

Exit status: 0 on success; 2 for a training.errors.TrainingError (a bad setting or bad data, from
the runner or the user's own modules: one line `error: ...` on stderr); 1 for anything else
(traceback, then one line `error: ...`).

Environment knobs (none is needed on SageMaker):
  TRAINING_CHECKPOINT_DIR  checkpoint folder (default /opt/ml/checkpoints, or
                           $SAGEMAKER_BASE_DIR/checkpoints when the toolkit's base dir moved)
  TRAINING_CACHE_DIR       prepared-data cache, one per node (default: per-host temp folder)
  TRAINING_LOCAL_ROOT      outside SageMaker, root of model/output/checkpoints (.runs/local)
  TRAINING_DEBUG_DIR       test hook: each rank writes rank-<N>.json (parameter hash, step,
                           cluster) and prepare_data leaves a marker per call
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make `training` and the user's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hashlib
import json
import logging
import os
import platform
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from training import contract, watchdog
from training.atomic import atomic_write_bytes
from training.errors import ConfigError, TrainingError

log = logging.getLogger("training")
#: The bundle's root (/opt/ml/code on SageMaker): the runner package and the user's packages.
CODE_ROOT = Path(__file__).resolve().parent.parent

_QUIET = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*sync_dist=True.*",
    r".*You're resuming from a checkpoint that ended.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*LeafSpec.*",
)


#: What main() needs to explain a distributed failure (filled in by run()).
_STATE: dict[str, Any] = {}


def explain_distributed_failure(err: BaseException) -> str | None:
    """One line for a torch.distributed failure of a distributed run, or None.

    Before the process group is up (rendezvous / init timed out or was refused) the likely
    cause is the network: contract.NETWORK_HINT. After it, a peer died or dropped off."""
    if not _STATE.get("distributed"):
        return None
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return None
    text = f"{type(err).__name__}: {_one_line(err)}"
    who = f"rank {_STATE['rank']} of {_STATE['world']} on host {_STATE['host']}"
    is_dist_error = isinstance(err, getattr(dist, "DistError", ())) or any(
        marker in text for marker in ("Gloo", "gloo", "NCCL", "Connection", "connection")
    )
    initialized = dist.is_available() and dist.is_initialized()
    if not initialized and (is_dist_error or contract.explain_network_failure(text)):
        return (
            f"process group init failed for {who} (timeout {_STATE['timeout_s']} s): "
            f"{contract.NETWORK_HINT}; {text}"
        )
    if initialized and is_dist_error:
        return (
            f"{who} {contract.PEER_LOST_MARKER} (another rank died or the network dropped; timeout "
            f"{_STATE['timeout_s']} s): {text}"
        )
    return None


def parameter_hash(module: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if hasattr(tensor, "full_tensor"):  # a sharded parameter: every rank gathers it
            tensor = tensor.full_tensor()
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest's capture swaps it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _configure_logging(rank: int) -> None:
    """INFO lines of the `training` loggers on stderr, tagged with the global rank."""
    logger = logging.getLogger("training")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:500] if text else type(err).__name__


def _versions(pl: Any) -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version(), pl.__name__: pl.__version__}
    for name in ("torch", "torchmetrics", "jsonargparse"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def run(argv: Sequence[str]) -> int:
    import torch

    from training import cluster as cluster_mod
    from training import sharding, sm_env, smddp_rules
    from training import task as task_mod
    from training.callbacks import callbacks_for, has_validation_loop, scalars, write_progress
    from training.checkpoints import atomic_checkpoint_io, select_checkpoint
    from training.export import save_model
    from training.guards import guard_callbacks
    from training.loader_workers import loader_guard, use_clean_workers
    from training.loggers import loggers_for
    from training.monitored_keys import monitor_guard
    from training.node_prepare import prepare_on_node
    from training.runner_cli import RunnerTrainer

    sm = sm_env.read(argv)
    cluster = cluster_mod.detect(sm)
    cluster_mod.export_env(cluster)
    _configure_logging(cluster.global_rank)
    hp = sm.hyperparameters
    dog = watchdog.install(
        watchdog.Watchdog(
            rank=cluster.global_rank,
            world=cluster.world_size,
            host=sm.current_host,
            startup_timeout_s=hp.startup_timeout_s,
            stall_timeout_s=hp.stall_timeout_s,
        )
    )
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    for note in cluster.notes:
        log.warning(note)
    log.info("cluster: %s", cluster.describe())
    shard = sharding.settings_for(hp, cluster)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    precision = cluster_mod.resolve_precision(hp.precision, cluster.accelerator, bf16)
    debug = os.environ.get(contract.DEBUG_DIR_ENV)
    debug_dir = Path(debug) if debug else None

    def runner_trainer(task: Any, given: Any) -> RunnerTrainer:
        """The runner's part of the Trainer, which LightningCLI builds from the config's
        `trainer:` (training/runner_cli.py): the cluster, checkpoints, logs and guards."""
        pl = task.pl
        use_clean_workers(task.datamodule)  # before any DataLoader starts a worker
        cluster_mod.import_backend(cluster)
        if cluster.is_global_zero:
            _log_task(task, hp, precision, cluster.world_size)
        runner_cb = callbacks_for(task.flavour)
        return RunnerTrainer(
            arguments={  # OWNED_TRAINER_KEYS (training/config_check.py) and the logger
                **cluster_mod.lightning_kwargs(cluster, hp.dist_timeout_s, pl, shard, task.model),
                "precision": precision,
                "plugins": [atomic_checkpoint_io(pl)],
                # MetricLines is a Checkpoint: Lightning adds none of its own
                "enable_checkpointing": True,
                "default_root_dir": str(sm.output_data_dir),
                "enable_progress_bar": False,
                "logger": loggers_for(pl, given.get("logger"), sm.output_data_dir),
            },
            callbacks=[
                runner_cb.MetricLines(cluster.world_size),
                runner_cb.LastCheckpoint(
                    sm.checkpoint_dir, hp.checkpoint_every_n_steps, hp.checkpoint_every_minutes
                ),
                *guard_callbacks(task.flavour, cluster.world_size, dog),
                *monitor_guard(task.flavour, list(given.get("callbacks") or []), hp.config),
                *loader_guard(task.flavour),
                *([runner_cb.DebugProgress(debug_dir, cluster.global_rank)] if debug_dir else []),
                *sharding.callbacks(shard, pl, cluster),
            ],
        )

    # The task first: a typo'd override fails here, before the backend, data or model dir.
    task = task_mod.load(
        hp.config,
        hp.config_overrides(with_lr=False),
        lr=hp.lr,
        code_root=CODE_ROOT,
        lr_key=hp.lr_key,
        lr_scaling=hp.lr_scaling,
        world_size=cluster.world_size,
        seed=hp.seed,
        cluster_keys={
            "num_nodes": cluster.num_nodes,
            "devices": cluster.devices_per_node,
            "accelerator": cluster.accelerator,
        },
        trainer=runner_trainer,
    )
    pl, trainer = task.pl, task.trainer
    pl.seed_everything(hp.seed, workers=True)
    if cluster.backend == "smddp":
        prepare_on_node(
            pl,
            [task.datamodule, task.model],
            is_local_zero=cluster.is_local_zero,
            marker_dir=sm.cache_dir,
            job_name=sm.job_name,
            timeout_s=hp.dist_timeout_s,
        )
    resume, step = select_checkpoint(sm.checkpoint_dir, quarantine=cluster.is_global_zero)
    sharding.check_resume(resume, shard)
    if resume is not None and cluster.is_local_zero:  # one line per host
        log.info("resuming from %s at global step %d", resume, step)
    smddp_rules.protect(trainer.strategy, cluster.backend)
    if debug_dir is not None:
        write_progress(debug_dir, cluster.global_rank, step=-1, phase="init")
    _STATE.update(
        distributed=cluster.distributed,
        rank=cluster.global_rank,
        world=cluster.world_size,
        host=sm.current_host,
        timeout_s=hp.dist_timeout_s,
    )
    module, datamodule = task.model, task.datamodule
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    except RuntimeError as err:
        if resume is None or "loading state_dict" not in str(err):
            raise
        first = _one_line(err).split("size mismatch for ", 1)[-1].split(". ")[0][:160]
        raise ConfigError(
            f"{resume} was written by another model ({first}): delete the checkpoints in "
            f"{sm.checkpoint_dir} (or give the job a new checkpoint location) to train this "
            "model from scratch"
        ) from None
    if has_validation_loop(pl, module, datamodule):
        # The model's final metrics, not another point of the curves: fit() closed the loggers,
        # and a logger used again opens a second TensorBoard event file with a repeated epoch.
        trainer.loggers = []
        results = trainer.validate(module, datamodule=datamodule, verbose=False)
        final = scalars(results[0] if results else {})
    else:  # what the last training epoch logged
        final = scalars(dict(trainer.callback_metrics))

    gathered = sharding.full_state_dict(module) if shard.enabled else None  # every rank
    watchdog.uninstall()  # the model write may take long; a peer that hangs now hits the timeout
    if trainer.is_global_zero:
        info = {
            "metrics": final,
            "config": hp.config,
            "classes": _class_paths(task),
            "lightning": task.flavour,
            "hyperparameters": {**hp.as_dict(), "lr_key": task.lr_key or hp.lr_key},
            "effective_lr": task.lr,
            "lr_key": task.lr_key,
            "base_lr": task.base_lr,
            "precision": precision,
            "global_step": trainer.global_step,
            "epochs_completed": trainer.current_epoch,
            "resumed_from": str(resume) if resume else None,
            "cluster": {
                "launcher": cluster.launcher,
                "world_size": cluster.world_size,
                "num_nodes": cluster.num_nodes,
                "devices_per_node": cluster.devices_per_node,
                "accelerator": cluster.accelerator,
                "backend": cluster.backend,
                "hosts": list(sm.hosts),
            },
            "versions": _versions(pl),
        }
        if gathered is not None:
            sharding.save_consolidated(
                gathered, sm.model_dir, config_yaml=task.resolved_config, info=info, trainer=trainer
            )
        else:
            save_model(module, sm.model_dir, config_yaml=task.resolved_config, info=info)
        log.info("model written to %s", sm.model_dir / contract.MODEL_FILE)
    if debug_dir is not None:
        record = {
            "global_rank": trainer.global_rank,
            "cluster": cluster.describe(),
            "global_step": trainer.global_step,
            "param_sha256": parameter_hash(module),
            "pid": os.getpid(),
        }
        atomic_write_bytes(
            debug_dir / f"rank-{trainer.global_rank}.json", json.dumps(record).encode()
        )
    if cluster.distributed:
        trainer.strategy.barrier("model saved")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


def _log_task(task: Any, hp: Any, precision: Any, world_size: int) -> None:
    """The task's notes, classes, hyperparameters and effective learning rate (global rank 0)."""
    for note in task.notes:
        log.warning(note)
    log.info(
        "task %s (%s): %s; hyperparameters %s; precision %s",
        hp.config,
        task.flavour,
        _class_paths(task),
        json.dumps(hp.as_dict(), sort_keys=True),
        precision,
    )
    if task.lr is not None:
        log.info(
            "effective lr %.6g at %s (base %.6g, %s scaling, world size %d)",
            task.lr,
            task.lr_key,
            task.base_lr,
            hp.lr_scaling,
            world_size,
        )


def _class_paths(task: Any) -> dict[str, str]:
    return {
        name: f"{type(obj).__module__}.{type(obj).__qualname__}"
        for name, obj in (("model", task.model), ("data", task.datamodule))
        if obj is not None
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except TrainingError as err:  # the runner's, or a user's module's: its message is the line
        print(f"error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as err:
        traceback.print_exc()
        from training.smddp_rules import explain as explain_smddp

        line = (
            explain_smddp(err)
            or explain_distributed_failure(err)
            or f"{type(err).__name__}: {_one_line(err)}"
        )
        print(f"error: {line}", file=sys.stderr, flush=True)
        return 1
    finally:
        watchdog.uninstall()


if __name__ == "__main__":
    sys.exit(main())
