"""Training data: the channel format, its validation, and the LightningDataModule.

Channel format (both `train` and the optional `validation` channel): one or more `*.csv` files
in the channel folder (read in name order), UTF-8, comma-separated, no header; each row holds
NUM_FEATURES (64) numeric feature values followed by one integer class label in
0..NUM_CLASSES-1 (0..9). Blank lines and lines starting with `#` are ignored. This is the shape
of scikit-learn's digits (8x8 images, grey levels 0..16), the default dataset when no `train`
channel is given; `write_default_dataset(folder)` exports it in this format.

Once per node (`prepare_data_per_node=True`, local rank 0) the channel is parsed, validated and
written as one prepared `.npz` cache (temp file + os.replace, so a reader never sees half a
file). Every rank then loads the cache in `setup` and splits off a seeded, deterministic
validation set when no `validation` channel is given. Bad data fails here, before training, with
one line naming the file, the line and what was expected.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from training import contract, sm_env
from training.atomic import atomic_write_bytes
from training.errors import DataError

log = logging.getLogger(__name__)

NUM_FEATURES = 64
NUM_CLASSES = 10
VAL_FRACTION = 0.1
CACHE_FORMAT = 1
EXPECTED = (
    f"comma-separated rows of {NUM_FEATURES} numbers followed by an integer label "
    f"0..{NUM_CLASSES - 1}"
)
DEFAULT_DATASET_FILE = "digits.csv"


# --- The channel format --------------------------------------------------------------------------
def _slow_parse(path: Path, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Line by line, for exact error messages."""
    rows: list[list[float]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cells = [c.strip() for c in stripped.split(",")]
        if len(cells) != NUM_FEATURES + 1:
            raise DataError(
                f"{path}:{lineno}: {len(cells)} columns; expected {NUM_FEATURES + 1} "
                f"({NUM_FEATURES} features + 1 label)"
            )
        values = []
        for col, cell in enumerate(cells, 1):
            try:
                value = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: column {col} is not a number: {cell!r}; expected {EXPECTED}"
                ) from None
            if not math.isfinite(value):
                raise DataError(
                    f"{path}:{lineno}: column {col} is {cell!r}; expected finite numbers"
                )
            values.append(value)
        label = values[-1]
        if label != int(label) or not 0 <= label < NUM_CLASSES:
            raise DataError(
                f"{path}:{lineno}: label {cells[-1]!r} is out of range; expected an integer "
                f"0..{NUM_CLASSES - 1}"
            )
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: no data rows; expected {EXPECTED}")
    array = np.asarray(rows, dtype=np.float64)
    return array[:, :-1].astype(np.float32), array[:, -1].astype(np.int64)


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 64) float32 and labels (N,) int64 from one channel file; raises DataError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    if not raw.strip():
        raise DataError(f"{path}: empty file; expected {EXPECTED}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected {EXPECTED}") from None
    try:  # fast path; any doubt goes to the line-by-line parser for the message
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": reported below
            array = np.loadtxt(text.splitlines(), delimiter=",", comments="#", ndmin=2)
        ok = (
            array.shape[0] > 0
            and array.shape[1] == NUM_FEATURES + 1
            and np.isfinite(array).all()
            and (array[:, -1] == np.round(array[:, -1])).all()
            and (array[:, -1] >= 0).all()
            and (array[:, -1] < NUM_CLASSES).all()
        )
    except ValueError:
        ok = False
    if not ok:
        return _slow_parse(path, text)
    return array[:, :-1].astype(np.float32), array[:, -1].astype(np.int64)


def channel_files(folder: Path, channel: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: channel {channel!r} folder does not exist")
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    if not files:
        raise DataError(f"{folder}: no .csv files in channel {channel!r}; expected {EXPECTED}")
    return files


def read_channel(folder: Path, channel: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_csv(p) for p in channel_files(folder, channel)]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def load_default_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (ships with sklearn, offline): (1797, 64) float32, (1797,) int64."""
    from sklearn.datasets import load_digits  # lazy: sklearn is slow to import

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


def write_default_dataset(folder: str | os.PathLike[str]) -> Path:
    """Export the default dataset as a `train` channel folder (one CSV file); returns the file."""
    features, labels = load_default_arrays()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DEFAULT_DATASET_FILE
    lines = [f"# scikit-learn digits: {EXPECTED}"]
    lines += [
        ",".join(f"{v:g}" for v in row) + f",{int(label)}"
        for row, label in zip(features, labels, strict=True)
    ]
    atomic_write_bytes(target, ("\n".join(lines) + "\n").encode())
    return target


def _fingerprint(channels: Mapping[str, Path]) -> str:
    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for name in contract.CHANNELS:
        if name not in channels:
            digest.update(f"|{name}=none".encode())
            continue
        for path in channel_files(channels[name], name):
            st = path.stat()
            digest.update(f"|{name}:{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# --- The data module ------------------------------------------------------------------------------
class DigitsDataModule(pl.LightningDataModule):
    """Prepares the channels once per node, loads them on every rank, splits validation by seed.

    Args:
        batch_size: per-device batch size.
        num_workers: data loader workers per process.
        seed: seed of the validation split (when there is no validation channel).
        channels: channel name -> folder; default: the job's SM_CHANNEL_* folders.
        cache_dir: node-local folder of the prepared cache; default: the runner's.
    """

    def __init__(
        self,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 42,
        channels: Mapping[str, Path] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.prepare_data_per_node = True
        if channels is None:
            channels = sm_env.read_channels(os.environ)
        self.channels = {k: Path(v) for k, v in channels.items() if k in contract.CHANNELS}
        self.cache_dir = Path(cache_dir) if cache_dir else sm_env.node_cache_dir(os.environ)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = torch.cuda.is_available()
        debug = os.environ.get(contract.DEBUG_DIR_ENV)
        self.events_dir = Path(debug) if debug else None
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.feature_mean: torch.Tensor | None = None
        self.feature_std: torch.Tensor | None = None

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / f"prepared-{_fingerprint(self.channels)}.npz"

    def prepare_data(self) -> None:
        """Once per node: parse + validate the channels into the prepared cache."""
        if self.events_dir is not None:  # test hook: count how often this runs
            self.events_dir.mkdir(parents=True, exist_ok=True)
            with open(self.events_dir / "prepare_data.log", "a") as events:
                events.write(f"{os.getpid()}\n")
        target = self.cache_file
        if target.exists():
            log.info("prepared data already cached at %s", target)
            return
        arrays: dict[str, np.ndarray] = {}
        if contract.TRAIN_CHANNEL in self.channels:
            x, y = read_channel(self.channels[contract.TRAIN_CHANNEL], contract.TRAIN_CHANNEL)
            source = str(self.channels[contract.TRAIN_CHANNEL])
        else:
            x, y = load_default_arrays()
            source = "scikit-learn digits (no train channel)"
        arrays["train_x"], arrays["train_y"] = x, y
        if contract.VALIDATION_CHANNEL in self.channels:
            vx, vy = read_channel(
                self.channels[contract.VALIDATION_CHANNEL], contract.VALIDATION_CHANNEL
            )
            arrays["val_x"], arrays["val_y"] = vx, vy
        if contract.VALIDATION_CHANNEL not in self.channels and len(y) < 2:
            raise DataError(
                f"{source}: {len(y)} row(s); need at least 2 to split off a validation set"
            )
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(target, buffer.getvalue())
        log.info("prepared %d training rows from %s into %s", len(y), source, target)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        path = self.cache_file
        if not path.exists():
            raise DataError(f"{path}: prepared data missing; prepare_data did not run on this node")
        with np.load(path, allow_pickle=False) as cached:
            arrays = {k: cached[k] for k in cached.files}
        x, y = arrays["train_x"], arrays["train_y"]
        if "val_x" in arrays:
            tx, ty, vx, vy = x, y, arrays["val_x"], arrays["val_y"]
        else:
            order = np.random.default_rng(self.seed).permutation(len(y))
            n_val = max(1, round(len(y) * VAL_FRACTION))
            val_idx, train_idx = order[:n_val], order[n_val:]
            tx, ty, vx, vy = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
        self.feature_mean = torch.from_numpy(tx.mean(axis=0))
        std = tx.std(axis=0)
        self.feature_std = torch.from_numpy(np.where(std > 1e-6, std, 1.0).astype(np.float32))
        self.train_set = TensorDataset(torch.from_numpy(tx), torch.from_numpy(ty))
        self.val_set = TensorDataset(torch.from_numpy(vx), torch.from_numpy(vy))

    def _loader(self, dataset: TensorDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("setup() has not run")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
