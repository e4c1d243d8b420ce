"""The SageMaker contract: SM_* environment + `--key value` hyperparameters -> SageMakerEnv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import contract
from training.sm_env import ConfigError, Hyperparameters, parse_argv, read

SM_ENV = {
    "SM_TRAINING_ENV": "{}",
    "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
    "SM_CURRENT_HOST": "algo-2",
    "SM_NUM_GPUS": "8",
    "SM_NUM_CPUS": "96",
    "SM_CHANNELS": json.dumps(["train", "validation"]),
    "SM_CHANNEL_TRAIN": "/opt/ml/input/data/train",
    "SM_CHANNEL_VALIDATION": "/opt/ml/input/data/validation",
    "SM_MODEL_DIR": "/opt/ml/model",
    "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
    "SM_FRAMEWORK_PARAMS": json.dumps({"sagemaker_distributed_dataparallel_enabled": True}),
}


def test_sagemaker_environment() -> None:
    sm = read(["--epochs", "3", "--lr", "0.01"], SM_ENV)
    assert sm.on_sagemaker
    assert sm.hosts == ("algo-1", "algo-2")
    assert sm.current_host == "algo-2" and sm.host_rank == 1
    assert (sm.num_gpus, sm.num_cpus) == (8, 96)
    assert dict(sm.channels) == {
        "train": Path("/opt/ml/input/data/train"),
        "validation": Path("/opt/ml/input/data/validation"),
    }
    assert sm.model_dir == Path("/opt/ml/model")
    assert sm.output_data_dir == Path("/opt/ml/output/data")
    assert sm.checkpoint_dir == Path(contract.CHECKPOINT_DIR)
    assert sm.cache_dir.name == "algo-2"  # one cache per (simulated) host
    assert sm.smddp_launcher and not sm.torchrun_launcher
    assert sm.hyperparameters.epochs == 3 and sm.hyperparameters.lr == 0.01
    with pytest.raises(AttributeError):
        sm.num_gpus = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        sm.channels["x"] = Path()  # type: ignore[index]


def test_local_defaults(tmp_path: Path) -> None:
    sm = read([], {"TRAINING_LOCAL_ROOT": str(tmp_path)}, gpu_count=0)
    assert not sm.on_sagemaker
    assert sm.hosts == ("algo-1",) and sm.current_host == "algo-1"
    assert sm.num_gpus == 0
    assert dict(sm.channels) == {}
    assert sm.model_dir == tmp_path / "model"
    assert sm.output_data_dir == tmp_path / "output/data"
    assert sm.checkpoint_dir == tmp_path / "checkpoints"
    assert sm.cache_dir == tmp_path / "cache"
    # The runner keys with defaults; the shortcuts (epochs, lr, ...) leave the task config's.
    assert {k: str(v) for k, v in sm.hyperparameters.as_dict().items()} == (
        contract.runner_defaults()
    )
    assert sm.hyperparameters.config == "digits" and sm.hyperparameters.epochs is None
    assert sm.hyperparameters.config_overrides() == {}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TRAINING_CHECKPOINT_DIR": "/x/ckpt", "SM_MODEL_DIR": "/m"}, "/x/ckpt"),
        (
            {"SAGEMAKER_BASE_DIR": "/hosts/algo-1", "SM_MODEL_DIR": "/m"},
            "/hosts/algo-1/checkpoints",
        ),
        ({"SM_MODEL_DIR": "/m"}, contract.CHECKPOINT_DIR),
    ],
)
def test_checkpoint_dir(env: dict[str, str], expected: str) -> None:
    assert read([], env, gpu_count=0).checkpoint_dir == Path(expected)


def test_hyperparameter_fields_match_contract() -> None:
    fields = list(Hyperparameters.__dataclass_fields__)
    assert fields == [*contract.HYPERPARAMETERS, "overrides"]


def test_shortcuts_and_dotted_overrides_become_config_overrides() -> None:
    hp = read(
        ["--epochs", "3", "--lr", "0.01", "--model.init_args.hidden", "[64]"], {}, gpu_count=0
    ).hyperparameters
    assert dict(hp.overrides) == {"model.init_args.hidden": "[64]"}
    assert hp.config_overrides() == {
        "model.init_args.hidden": "[64]",
        "trainer.max_epochs": "3",
        "model.init_args.lr": "0.01",
    }
    custom = read(["--lr", "0.5", "--lr_key", "optimizer.init_args.lr"], {}, gpu_count=0)
    assert custom.hyperparameters.config_overrides() == {"optimizer.init_args.lr": "0.5"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--epochs", "5"], {"epochs": "5"}),
        (["--epochs=5", "--lr_scaling", "sqrt"], {"epochs": "5", "lr_scaling": "sqrt"}),
        # SDK 2.x JSON-encodes every value; the toolkit may pass them on still encoded.
        (["--lr_scaling", '"none"', "--epochs", '"7"'], {"lr_scaling": "none", "epochs": "7"}),
        (["--precision", "32"], {"precision": "32"}),
        (["--batch-size", "8"], {"batch_size": "8"}),
    ],
)
def test_parse_argv(argv: list[str], expected: dict[str, str]) -> None:
    assert parse_argv(argv) == expected


def test_json_encoded_values_are_typed() -> None:
    hp = read(["--lr", '"0.5"', "--precision", '"bf16-mixed"'], {}, gpu_count=0).hyperparameters
    assert hp.lr == 0.5 and hp.precision == "bf16-mixed"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "hyperparameter epochs='0' is invalid: expected an integer >= 1"),
        (["--epochs", "ten"], "hyperparameter epochs='ten' is invalid: expected an integer >= 1"),
        (
            ["--batch_size", "1.5"],
            "hyperparameter batch_size='1.5' is invalid: expected an integer >= 1",
        ),
        (["--lr", "0"], "hyperparameter lr='0' is invalid: expected a number > 0"),
        (["--lr", "nan"], "hyperparameter lr='nan' is invalid: expected a number > 0"),
        (["--seed", "-1"], "hyperparameter seed='-1' is invalid: expected an integer >= 0"),
        (
            ["--max_steps", "-2"],
            "hyperparameter max_steps='-2' is invalid: expected an integer >= -1",
        ),
        (
            ["--lr_scaling", "cubic"],
            "hyperparameter lr_scaling='cubic' is invalid: expected one of linear, sqrt, none",
        ),
        (
            ["--precision", '"64"'],
            "hyperparameter precision='64' is invalid: expected one of auto, 32, 16-mixed, "
            "bf16-mixed",
        ),
        (
            ["--process_group_backend", "mpi"],
            "hyperparameter process_group_backend='mpi' is invalid: expected one of auto, smddp, "
            "nccl, gloo",
        ),
        (
            ["--epoch", "3"],
            "unknown hyperparameter epoch='3': expected one of "
            + ", ".join(contract.HYPERPARAMETERS)
            + " or a config override like model.init_args.<name>, data.init_args.<name>, "
            "trainer.<name>",
        ),
        (
            ["--epochs", "3", "--trainer.max_epochs", "4"],
            "hyperparameters epochs=3 and trainer.max_epochs='4' set the same config key: keep one",
        ),
        (
            ["--model.init_args.opts", '{"a": 1}'],
            "hyperparameter model.init_args.opts='{\"a\": 1}' is invalid: a JSON object, which "
            "the SageMaker toolkit rewrites to k=v pairs; set one key per entry "
            "(model.init_args.opts.<key>=<value>)",
        ),
        (["--epochs"], "argument --epochs has no value: expected --epochs VALUE"),
        (["epochs", "3"], "unexpected argument 'epochs': expected --key value pairs"),
        (["--epochs", "3", "--epochs", "4"], "hyperparameter epochs given twice ('3', '4')"),
    ],
)
def test_bad_hyperparameters(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read(argv, {}, gpu_count=0)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SM_HOSTS": "algo-1"}, "SM_HOSTS='algo-1' is not valid JSON"),
        ({"SM_HOSTS": "[]"}, "SM_HOSTS='[]' is invalid: expected a JSON list"),
        (
            {"SM_HOSTS": '["a"]', "SM_CURRENT_HOST": "b"},
            "SM_CURRENT_HOST='b' is not in SM_HOSTS ['a']",
        ),
        ({"SM_NUM_GPUS": "x"}, "SM_NUM_GPUS='x' is invalid: expected an integer >= 0"),
    ],
)
def test_bad_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        read([], env, gpu_count=0)
    assert str(info.value) == message


def test_on_off_keys_read_as_the_toolkit_passes_them() -> None:
    """The real toolkit JSON-decodes each value and renders it back: "false" arrives as False."""
    from sagemaker_training import mapping

    argv = mapping.to_cmd_args(
        {"activation_checkpointing": json.loads("true"), "cpu_offload": False}
    )
    assert argv == ["--activation_checkpointing", "True", "--cpu_offload", "False"]
    hp = read(argv, {}, gpu_count=0).hyperparameters
    assert (hp.activation_checkpointing, hp.cpu_offload) == ("true", "false")
    with pytest.raises(
        ConfigError, match="cpu_offload='no' is invalid: expected one of false, true"
    ):
        read(["--cpu_offload", "no"], {}, gpu_count=0)
