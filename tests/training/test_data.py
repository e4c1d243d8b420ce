"""Channel format, validation messages, the prepared cache and the seeded split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl

from training import contract
from training.node_prepare import PrepareError, prepare_on_node
from training.tasks.digits import data as D

GOOD_ROW = ",".join(["1"] * 64) + ",3"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# (id, file text, expected message with {f} for the file path)
BAD_FILES = [
    ("empty", "", "{f}: empty file; expected " + D.EXPECTED),
    ("blank", "\n \n", "{f}: empty file; expected " + D.EXPECTED),
    ("comments-only", "# nothing\n", "{f}: no data rows; expected " + D.EXPECTED),
    (
        "malformed",
        GOOD_ROW + "\n" + ",".join(["1"] * 10) + ",x," + ",".join(["1"] * 53) + ",2\n",
        "{f}:2: column 11 is not a number: 'x'; expected " + D.EXPECTED,
    ),
    (
        "wrong-shape",
        ",".join(["0"] * 10) + "\n",
        "{f}:1: 10 columns; expected 65 (64 features + 1 label)",
    ),
    (
        "label-out-of-range",
        GOOD_ROW + "\n" + ",".join(["1"] * 64) + ",10\n",
        "{f}:2: label '10' is out of range; expected an integer 0..9",
    ),
    (
        "negative-label",
        ",".join(["1"] * 64) + ",-1\n",
        "{f}:1: label '-1' is out of range; expected an integer 0..9",
    ),
    (
        "fractional-label",
        ",".join(["1"] * 64) + ",2.5\n",
        "{f}:1: label '2.5' is out of range; expected an integer 0..9",
    ),
    (
        "nan-feature",
        "# header\n" + ",".join(["1"] * 5) + ",nan," + ",".join(["1"] * 58) + ",1\n",
        "{f}:2: column 6 is 'nan'; expected finite numbers",
    ),
    (
        "nan-label",
        ",".join(["1"] * 64) + ",NaN\n",
        "{f}:1: column 65 is 'NaN'; expected finite numbers",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(D.DataError) as info:
        D.read_csv(path)
    assert str(info.value) == message.format(f=path)


def test_channel_errors(tmp_path: Path) -> None:
    with pytest.raises(D.DataError) as info:
        D.read_channel(tmp_path / "missing", "train")
    assert str(info.value) == f"{tmp_path / 'missing'}: channel 'train' folder does not exist"
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DataError) as info:
        D.read_channel(tmp_path / "empty", "train")
    assert str(info.value) == (
        f"{tmp_path / 'empty'}: no .csv files in channel 'train'; expected {D.EXPECTED}"
    )


def test_default_dataset_round_trip(tmp_path: Path) -> None:
    path = D.write_default_dataset(tmp_path / "train")
    assert path == tmp_path / "train" / D.DEFAULT_DATASET_FILE
    x, y = D.read_channel(tmp_path / "train", "train")
    ref_x, ref_y = D.load_default_arrays()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)
    assert not list((tmp_path / "train").glob(".*.tmp"))


@pytest.fixture(autouse=True)
def _no_debug_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The data module reads the test hook's folder from the environment: none by default."""
    monkeypatch.delenv(contract.DEBUG_DIR_ENV, raising=False)


def _module(channels, cache, seed=42):
    return D.DigitsDataModule(batch_size=32, seed=seed, channels=channels, cache_dir=cache)


def test_channels_and_cache_default_to_the_job_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_CHANNELS", '["train"]')
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "train"))
    monkeypatch.setenv(contract.CACHE_DIR_ENV, str(tmp_path / "node-cache"))
    dm = D.DigitsDataModule()
    assert dm.channels == {"train": tmp_path / "train"}
    assert dm.cache_dir == tmp_path / "node-cache"
    assert (dm.batch_size, dm.num_workers, dm.seed) == (256, 0, 42)


def test_prepare_once_then_cached_and_split_is_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    D.write_default_dataset(tmp_path / "train")
    channels = {"train": tmp_path / "train"}
    events = tmp_path / "events"
    monkeypatch.setenv(contract.DEBUG_DIR_ENV, str(events))
    first = _module(channels, tmp_path / "cache")
    first.prepare_data()
    cache = first.cache_file
    assert cache.exists()
    mtime = cache.stat().st_mtime_ns
    second = _module(channels, tmp_path / "cache")
    second.prepare_data()  # a second call reuses the cache
    assert cache.stat().st_mtime_ns == mtime
    assert len((events / "prepare_data.log").read_text().split()) == 2  # one line per call
    first.setup("fit")
    second.setup("fit")
    assert len(first.val_set) == 180 and len(first.train_set) == 1617
    assert (first.val_set.tensors[1] == second.val_set.tensors[1]).all()
    other = _module(channels, tmp_path / "cache", seed=7)
    other.setup("fit")
    assert not (other.val_set.tensors[0] == first.val_set.tensors[0]).all()
    assert first.feature_std.min() > 0


def test_changed_channel_gets_a_new_cache(tmp_path: Path) -> None:
    D.write_default_dataset(tmp_path / "train")
    dm = _module({"train": tmp_path / "train"}, tmp_path / "cache")
    before = dm.cache_file
    _write(tmp_path / "train", "more.csv", GOOD_ROW + "\n")
    assert dm.cache_file != before


def test_validation_channel_is_used(tmp_path: Path) -> None:
    D.write_default_dataset(tmp_path / "train")
    _write(tmp_path / "val", "v.csv", GOOD_ROW + "\n" + GOOD_ROW + "\n")
    dm = _module({"train": tmp_path / "train", "validation": tmp_path / "val"}, tmp_path / "c")
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 1797 and len(dm.val_set) == 2


def test_setup_without_prepare_fails(tmp_path: Path) -> None:
    dm = _module({}, tmp_path / "cache")
    with pytest.raises(D.DataError, match="prepared data missing; prepare_data did not run"):
        dm.setup("fit")


def test_prepare_on_node_without_torch_distributed(tmp_path: Path) -> None:
    """training/node_prepare.py, as the runner uses it under smddp: local rank 0 runs the
    hook, the other local ranks wait for its marker (or its one-line error); afterwards the
    hook is disarmed, so Lightning sees it un-overridden and opens no process group."""
    from pytorch_lightning.utilities.model_helpers import is_overridden

    def on_node(dm, *, is_local_zero, timeout_s, job_name="job-bad"):
        prepare_on_node(
            pl,
            [dm],
            is_local_zero=is_local_zero,
            marker_dir=tmp_path / "cache",
            job_name=job_name,
            timeout_s=timeout_s,
        )

    bad = tmp_path / "train"
    _write(bad, "x.csv", "1,2\n")
    follower = _module({"train": bad}, tmp_path / "cache")
    leader = _module({"train": bad}, tmp_path / "cache")
    with pytest.raises(D.DataError) as first:
        on_node(leader, is_local_zero=True, timeout_s=5)
    assert str(first.value) == f"{bad / 'x.csv'}:1: 2 columns; expected 65 (64 features + 1 label)"
    with pytest.raises(PrepareError) as second:  # the other local ranks see the same one line
        on_node(follower, is_local_zero=False, timeout_s=5)
    assert str(second.value) == f"prepare_data failed on local rank 0: DataError: {first.value}"
    assert "\n" not in str(second.value)
    assert is_overridden("prepare_data", leader)  # a failed hook is not disarmed

    D.write_default_dataset(tmp_path / "good")
    ok = _module({"train": tmp_path / "good"}, tmp_path / "cache")
    with pytest.raises(PrepareError, match="did not finish on local rank 0 within 0 s"):
        on_node(ok, is_local_zero=False, timeout_s=0, job_name="job-ok")
    assert is_overridden("prepare_data", ok)
    on_node(ok, is_local_zero=True, timeout_s=5, job_name="job-ok")
    assert ok.cache_file.exists()
    waiter = _module({"train": tmp_path / "good"}, tmp_path / "cache")
    on_node(waiter, is_local_zero=False, timeout_s=5, job_name="job-ok")
    for dm in (ok, waiter):  # disarmed: Lightning's prepare_data barrier is never entered
        assert not is_overridden("prepare_data", dm)
        dm.setup("fit")
        assert len(dm.train_set) == 1617
