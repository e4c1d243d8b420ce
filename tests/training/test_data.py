"""Channel format, validation messages, the prepared cache and the seeded split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import data as D

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


def _module(channels, cache, events=None, seed=42):
    return D.ChannelDataModule(channels, cache, batch_size=32, seed=seed, events_dir=events)


def test_prepare_once_then_cached_and_split_is_seeded(tmp_path: Path) -> None:
    D.write_default_dataset(tmp_path / "train")
    channels = {"train": tmp_path / "train"}
    events = tmp_path / "events"
    first = _module(channels, tmp_path / "cache", events)
    first.prepare_data()
    cache = first.cache_file
    assert cache.exists()
    mtime = cache.stat().st_mtime_ns
    second = _module(channels, tmp_path / "cache", events)
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
    bad = tmp_path / "train"
    _write(bad, "x.csv", "1,2\n")
    follower = _module({"train": bad}, tmp_path / "cache")
    leader = _module({"train": bad}, tmp_path / "cache")
    with pytest.raises(D.DataError) as first:
        leader.prepare_on_node(is_local_zero=True, timeout_s=5)
    with pytest.raises(D.DataError) as second:  # the other local ranks see the same one line
        follower.prepare_on_node(is_local_zero=False, timeout_s=5)
    assert (
        str(first.value)
        == str(second.value)
        == f"{bad / 'x.csv'}:1: 2 columns; expected 65 (64 features + 1 label)"
    )

    D.write_default_dataset(tmp_path / "good")
    ok = _module({"train": tmp_path / "good"}, tmp_path / "cache")
    with pytest.raises(D.DataError, match="not prepared by local rank 0 within 0 s"):
        ok.prepare_on_node(is_local_zero=False, timeout_s=0)
    ok.prepare_on_node(is_local_zero=True, timeout_s=5)
    ok.prepare_on_node(is_local_zero=False, timeout_s=5)
    from pytorch_lightning.utilities.model_helpers import is_overridden

    assert not is_overridden(
        "prepare_data", D.ExternallyPreparedDataModule({}, tmp_path, batch_size=1)
    )
    assert is_overridden("prepare_data", ok)
