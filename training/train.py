"""Entry point of the training job (the toolkit's `sagemaker_program`: training/train.py).

Runs as `python training/train.py --epochs 10 ...` from the code root (SageMaker, any launcher)
and as `python -m training.train ...` locally. Flow: read the SageMaker contract, work out the
cluster, build data, model and Trainer, fit (resuming from last.ckpt when there is one),
validate, and write the model from global rank 0 alone.

Exit status: 0 on success; 2 for a bad setting or bad data (one line `error: ...` on stderr);
1 for anything else (traceback, then one line `error: ...`).

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

if not __package__:  # run as a script: make `training` importable from the code root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hashlib
import io
import json
import logging
import os
import platform
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from training import contract
from training.sm_env import ConfigError

log = logging.getLogger("training")
DEBUG_DIR_ENV = "TRAINING_DEBUG_DIR"

_QUIET = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*sync_dist=True.*",
    r".*You're resuming from a checkpoint that ended.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*LeafSpec.*",
)


def _atomic_checkpoint_io() -> Any:
    """Lightning's TorchCheckpointIO, but local files are written to a temp file in the same
    folder, fsynced and os.replace()d: a job killed mid-write leaves the previous last.ckpt."""
    import torch
    from pytorch_lightning.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None):  # type: ignore[override]
            if storage_options is not None or "://" in str(path):
                return super().save_checkpoint(checkpoint, path, storage_options)
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name == contract.CHECKPOINT_FILE:
                rotate_checkpoint(target)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    torch.save(checkpoint, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return None

    return AtomicCheckpointIO()


def rotate_checkpoint(last: Path) -> None:
    """Keep the current last.ckpt as previous.ckpt before a new one is written.

    A hard link to a temp name, then os.replace: at every instant last.ckpt is a whole
    checkpoint (old or new) and previous.ckpt is a whole, older or equal one."""
    if not last.exists():
        return
    previous = last.with_name(contract.PREVIOUS_CHECKPOINT_FILE)
    tmp = last.with_name(f".{previous.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(last, tmp)
    except OSError:  # no hard links on this file system: copy
        import shutil

        shutil.copy2(last, tmp)
    os.replace(tmp, previous)


def select_checkpoint(folder: Path, *, quarantine: bool = False) -> tuple[Path | None, int]:
    """The checkpoint to resume from: last.ckpt, else previous.ckpt when last.ckpt is unreadable.

    Returns (None, 0) when neither file exists (a fresh start). Raises ConfigError when
    checkpoints exist but none can be read: a job never silently starts over from step 0.
    With `quarantine` (global rank 0, the only writer) an unreadable last.ckpt is renamed to a
    dot-file, so the next rotation cannot push it over the good previous.ckpt and the
    checkpoint sync (which skips dot-files) never uploads it again.
    """
    candidates = [folder / contract.CHECKPOINT_FILE, folder / contract.PREVIOUS_CHECKPOINT_FILE]
    problems: list[str] = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            step = checkpoint_step(path)
        except ConfigError as err:
            problem = str(err).split("; delete it")[0]
            log.warning("%s", problem)
            problems.append(problem.replace(f"{folder}{os.sep}", "", 1))
            continue
        if problems:
            log.warning(
                "falling back to %s at global step %d (%s is unreadable)",
                path,
                step,
                candidates[0].name,
            )
            if quarantine and candidates[0].exists():
                os.replace(candidates[0], folder / f".{candidates[0].name}.corrupt")
        return path, step
    if problems:
        raise ConfigError(
            "no usable checkpoint in "
            f"{folder}: {'; '.join(problems)}; refusing to start over from step 0: delete "
            f"{' and '.join(p.name for p in candidates if p.exists())} to train from scratch"
        )
    return None, 0


def checkpoint_step(path: Path) -> int:
    """The global step stored in a Lightning checkpoint."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state["global_step"])
    except Exception as err:
        raise ConfigError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: "
            f"{_one_line(err).split('. ')[0][:160]}); "
            "delete it to start over"
        ) from None


def atomic_write(target: Path, data: bytes) -> None:
    from training.data import atomic_write_bytes

    atomic_write_bytes(target, data)


def remove_stale_temps(folder: Path, names: Sequence[str]) -> None:
    """Delete temp files an earlier, killed write of `names` left in `folder` (`.<name>.*.tmp`):
    SageMaker uploads the whole model dir, so nothing but whole files may stay there."""
    for name in names:
        for stale in folder.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


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
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def save_model(net: Any, model_dir: Path, info: dict[str, Any]) -> None:
    """contract.MODEL_FILE (state_dict) + contract.MODEL_INFO_FILE (JSON), each atomically."""
    import torch

    remove_stale_temps(model_dir, (contract.MODEL_FILE, contract.MODEL_INFO_FILE))
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    atomic_write(model_dir / contract.MODEL_FILE, buffer.getvalue())
    text = json.dumps(info, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(model_dir / contract.MODEL_INFO_FILE, text.encode())


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


def run(argv: Sequence[str]) -> int:
    import pytorch_lightning as pl
    import torch
    import torchmetrics
    from pytorch_lightning.loggers import CSVLogger

    from training import cluster as cluster_mod
    from training import sm_env
    from training.data import (
        NUM_CLASSES,
        NUM_FEATURES,
        ChannelDataModule,
        ExternallyPreparedDataModule,
    )
    from training.model import MLP
    from training.module import (
        Classifier,
        DebugProgress,
        LastCheckpoint,
        MetricLines,
        write_progress,
    )

    sm = sm_env.read(argv)
    cluster = cluster_mod.detect(sm)
    cluster_mod.export_env(cluster)
    _configure_logging(cluster.global_rank)
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    for note in cluster.notes:
        log.warning(note)
    log.info("cluster: %s", cluster.describe())
    cluster_mod.import_backend(cluster)

    hp = sm.hyperparameters
    lr = cluster_mod.scaled_lr(hp.lr, hp.lr_scaling, cluster.world_size)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    precision = cluster_mod.resolve_precision(hp.precision, cluster.accelerator, bf16)
    if cluster.is_global_zero:
        log.info(
            "hyperparameters: %s; effective lr %.6g (base %.6g, %s scaling, world size %d); "
            "precision %s",
            json.dumps(hp.as_dict(), sort_keys=True),
            lr,
            hp.lr,
            hp.lr_scaling,
            cluster.world_size,
            precision,
        )
    pl.seed_everything(hp.seed, workers=True)

    debug_dir = Path(os.environ[DEBUG_DIR_ENV]) if os.environ.get(DEBUG_DIR_ENV) else None
    # smddp cannot open the extra gloo group Lightning's prepare_data barrier needs: prepare
    # through the node-local cache file instead (see data.ExternallyPreparedDataModule).
    external_prepare = cluster.backend == "smddp"
    datamodule_cls = ExternallyPreparedDataModule if external_prepare else ChannelDataModule
    datamodule = datamodule_cls(
        sm.channels,
        sm.cache_dir,
        batch_size=hp.batch_size,
        num_workers=hp.num_workers,
        seed=hp.seed,
        pin_memory=cluster.accelerator == "gpu",
        events_dir=debug_dir,
    )
    if external_prepare:
        datamodule.prepare_on_node(cluster.is_local_zero, hp.dist_timeout_s)
    net = MLP(NUM_FEATURES, NUM_CLASSES)
    module = Classifier(net, NUM_CLASSES, lr)

    resume, step = select_checkpoint(sm.checkpoint_dir, quarantine=cluster.is_global_zero)
    if resume is not None and cluster.is_global_zero:
        log.info("resuming from %s at global step %d", resume, step)

    trainer = pl.Trainer(
        **cluster_mod.lightning_kwargs(cluster, hp.dist_timeout_s),
        precision=precision,
        max_epochs=hp.epochs,
        max_steps=hp.max_steps,
        callbacks=[
            MetricLines(cluster.world_size),
            LastCheckpoint(sm.checkpoint_dir, hp.checkpoint_every_n_steps),
            *([DebugProgress(debug_dir, cluster.global_rank)] if debug_dir else []),
        ],
        enable_checkpointing=False,
        plugins=[_atomic_checkpoint_io()],
        logger=CSVLogger(save_dir=str(sm.output_data_dir), name="lightning_logs"),
        default_root_dir=str(sm.output_data_dir),
        enable_progress_bar=False,
        enable_model_summary=cluster.is_global_zero,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )
    if debug_dir is not None:
        write_progress(debug_dir, cluster.global_rank, step=-1, phase="init")
    _STATE.update(
        distributed=cluster.distributed,
        rank=cluster.global_rank,
        world=cluster.world_size,
        host=sm.current_host,
        timeout_s=hp.dist_timeout_s,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    results = trainer.validate(module, datamodule=datamodule, verbose=False)
    final = {k: float(v) for k, v in (results[0] if results else {}).items()}

    if trainer.is_global_zero:
        info = {
            "metrics": final,
            "hyperparameters": hp.as_dict(),
            "effective_lr": lr,
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
            "network": net.config(),
            "data": {
                "train_rows": len(datamodule.train_set or ()),
                "val_rows": len(datamodule.val_set or ()),
            },
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "pytorch_lightning": pl.__version__,
                "torchmetrics": torchmetrics.__version__,
            },
        }
        save_model(net, sm.model_dir, info)
        log.info("model written to %s", sm.model_dir / contract.MODEL_FILE)
    if debug_dir is not None:
        record = {
            "global_rank": trainer.global_rank,
            "cluster": cluster.describe(),
            "global_step": trainer.global_step,
            "param_sha256": parameter_hash(net),
            "pid": os.getpid(),
        }
        atomic_write(debug_dir / f"rank-{trainer.global_rank}.json", json.dumps(record).encode())
    if cluster.distributed:
        trainer.strategy.barrier("model saved")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from training.data import DataError

    try:
        return run(argv)
    except (ConfigError, DataError) as err:
        print(f"error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as err:
        traceback.print_exc()
        line = explain_distributed_failure(err) or f"{type(err).__name__}: {_one_line(err)}"
        print(f"error: {line}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
