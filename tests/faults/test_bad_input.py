# ruff: noqa: E501  (a table of exact messages: one case per line)
"""Bad input, one table: cdk.json configuration, CLI overrides, execution input and training
hyperparameters (contract and the script's argv), each with the exact one-line message.

The README points here. Cases elsewhere in the suite are not repeated word for word."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from core.config import ConfigError, TrainingConfig
from core.execution_input import ExecutionInputError, validate_execution_input
from training import contract, sm_env
from trainops.commands import build_input, local_config

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"

#: cdk.json `training` settings (merged over the repo's cdk.json) -> message.
CONFIG_CASES = [
    ({"instance_count": 0}, "instance_count=0: expected an integer from 1 to 64"),
    ({"instance_count": "two"}, "instance_count='two': expected an integer"),
    (
        {"instance_type": "m5.xlarge"},
        "instance_type='m5.xlarge': expected a SageMaker instance type like ml.p4d.24xlarge",
    ),
    (
        {"instance_type": "ml.p5.48xlarge", "backend": "smddp"},
        "backend='smddp': smddp runs only on ml.p4d.24xlarge, ml.p4de.24xlarge, ml.p3dn.24xlarge, not ml.p5.48xlarge (SMDDP does not support P5: use backend=torchrun)",
    ),
    (
        {"spot": True, "max_wait_s": 172800, "checkpointing": False},
        "checkpointing=False: spot=true needs checkpointing=true to resume",
    ),
    (
        {"input_mode": "Pipe"},
        "input_mode='Pipe': training/ reads files, not FIFOs: use File or FastFile",
    ),
    ({"input_mode": "Stream"}, "input_mode='Stream': expected one of File, FastFile"),
    ({"volume_size_gb": 0}, "volume_size_gb=0: expected an integer from 1 to 16384 GB"),
    ({"max_runtime_s": 0}, "max_runtime_s=0: expected seconds from 1 to 2419200 (28 days)"),
    (
        {"spot": True, "max_runtime_s": 3600, "max_wait_s": 1800},
        "max_wait_s=1800: with spot=true expected max_runtime_s (3600) < max_wait_s <= 2419200",
    ),
    ({"removal_policy": "snapshot"}, "removal_policy='snapshot': expected one of retain, destroy"),
    (
        {"stack_name": "1abc"},
        "stack_name='1abc': expected a CloudFormation stack name ([A-Za-z][A-Za-z0-9-]*)",
    ),
    (
        {"job_name_prefix": "bad_prefix!"},
        "job_name_prefix='bad_prefix!': expected 1-24 letters, digits and inner hyphens (job names are <prefix>-<suffix>, at most 63 characters)",
    ),
    ({"hyperparameters": {"epochs": "0"}}, "hyperparameters.epochs='0': expected an integer >= 1"),
    (
        {"hyperparameters": {"sagemaker_program": "x.py"}},
        "hyperparameters.sagemaker_program='x.py': sagemaker_* keys are set by the workflow, not by users",
    ),
    (
        {"notification_email": "not-an-email"},
        "notification_email='not-an-email': expected an e-mail address or none",
    ),
    (
        {"schedule_cron": "every day"},
        "schedule_cron='every day': expected cron(minutes hours day-of-month month day-of-week year) or off",
    ),
    (
        {"vpc_cidr": "10.0.0.0/33"},
        "vpc_cidr='10.0.0.0/33': expected a private IPv4 network /16 to /19 (a /20 per AZ)",
    ),
    (
        {"instanse_type": "ml.m5.xlarge"},
        "training.instanse_type='ml.m5.xlarge': unknown training setting (did you mean instance_type?); known: see TrainingConfig in core/config.py",
    ),
    ({"keep_alive_s": 7200}, "keep_alive_s=7200: expected seconds from 0 to 3600"),
    (
        {"spot": True, "keep_alive_s": 60},
        "max_wait_s=0: with spot=true expected max_runtime_s (86400) < max_wait_s <= 2419200",
    ),
    ({"max_capacity_retries": -1}, "max_capacity_retries=-1: expected an integer from 0 to 10"),
    (
        {"encrypt_inter_container_traffic": "maybe"},
        "encrypt_inter_container_traffic='maybe': expected true or false",
    ),
]
#: Whole-context keys (`-c key=value` beside the training object) -> message.
CONTEXT_CASES = [
    (
        {"instance_type": "ml.m5.xlarge"},
        "instance_type='ml.m5.xlarge': settings go under training.: use -c training.instance_type=...",
    ),
    ({"training": "not json"}, "training=None: expected an object of training settings"),
    ({"training.tags": "{bad"}, "training.tags='{bad': expected a JSON object"),
    ({"training.instance_count": "0"}, "instance_count=0: expected an integer from 1 to 64"),
]
#: `trainops start` overrides (argparse fields) -> message.
CLI_CASES = [
    (
        {"hp": ["epoch=5"]},
        "--hp epoch=5: the training script has no hyperparameter 'epoch'; known: "
        + ", ".join(sorted(contract.HYPERPARAMETERS))
        + ", or a config override like model.init_args.<name>",
    ),
    ({"hp": ["epochs"]}, "--hp 'epochs': expected KEY=VALUE, e.g. --hp epochs=5"),
    ({"hp": ["=5"]}, "--hp '=5': expected KEY=VALUE, e.g. --hp epochs=5"),
    ({"hp": ["epochs=ten"]}, "hyperparameters.epochs='ten': expected an integer >= 1"),
    ({"hp": ["lr=0"]}, "hyperparameters.lr='0': expected a number > 0"),
    ({"hp": ["batch_size=-1"]}, "hyperparameters.batch_size='-1': expected an integer >= 1"),
    (
        {"hp": ["lr_scaling=cubic"]},
        "hyperparameters.lr_scaling='cubic': expected one of linear, sqrt, none",
    ),
    (
        {"hp": ["sagemaker_program=x.py"]},
        "--hp sagemaker_program=x.py: the training script has no hyperparameter 'sagemaker_program'; known: "
        + ", ".join(sorted(contract.HYPERPARAMETERS))
        + ", or a config override like model.init_args.<name>",
    ),
    (
        {"instance_type": "ml.foo"},
        "instance_type='ml.foo': expected a SageMaker instance type like ml.p4d.24xlarge",
    ),
    ({"instance_count": 0}, "instance_count=0: expected an integer from 1 to 64"),
    ({"instance_count": 100}, "instance_count=100: expected an integer from 1 to 64"),
    (
        {"hp": ["sharding=hybrid"], "instance_count": 1},
        "hyperparameters.sharding='hybrid': hybrid shards within a node and replicates across nodes, and this job has 1 node; use fsdp on one node",
    ),
    (
        {"hp": ["cpu_offload=true"]},
        "hyperparameters.cpu_offload='true': needs sharding=fsdp or sharding=hybrid (sharding is none)",
    ),
]
#: Step Functions execution input -> message.
EXECUTION_CASES = [
    ([], "execution input must be a JSON object, got array"),
    (
        {"trigger": "cron"},
        "trigger must be one of 'schedule', 'operator', 'sdk', 'new-data', got \"cron\"",
    ),
    (
        {"bogus": 1},
        'execution input has an unknown key; allowed: hyperparameters, instance_count, instance_type, spot, train_s3_uri, trigger, got "bogus"',
    ),
    (
        {"instance_type": "m5"},
        "instance_type must be a SageMaker instance type like 'ml.p4d.24xlarge', got \"m5\"",
    ),
    ({"instance_count": 0}, "instance_count must be an integer from 1 to 64, got 0"),
    ({"instance_count": "2"}, 'instance_count must be an integer from 1 to 64, got "2"'),
    ({"spot": "yes"}, 'spot must be true or false, got "yes"'),
    (
        {"train_s3_uri": "https://b/k"},
        'train_s3_uri must be an s3:// URI with a bucket and a key prefix (s3://bucket/prefix/), got "https://b/k"',
    ),
    (
        {"train_s3_uri": "s3://bucket"},
        'train_s3_uri must be an s3:// URI with a bucket and a key prefix (s3://bucket/prefix/), got "s3://bucket"',
    ),
    ({"hyperparameters": []}, "hyperparameters must be an object of string values, got array"),
    (
        {"hyperparameters": {"epochs": 5}},
        'hyperparameters values must be strings (SageMaker passes hyperparameters as strings), got "epochs": 5',
    ),
    (
        {"hyperparameters": {"sagemaker_program": "x"}},
        'hyperparameters key "sagemaker_program" is reserved: keys starting with "sagemaker_" are set by the workflow',
    ),
    ({"instance_count": True}, "instance_count must be an integer from 1 to 64, got true"),
]
#: One hyperparameter as SageMaker sends it (a string) -> message.
HYPERPARAMETER_CASES = [
    ("epochs", "1.5", "hyperparameter epochs='1.5' is invalid: expected an integer >= 1"),
    ("epochs", " ", "hyperparameter epochs=' ' is invalid: expected an integer >= 1"),
    ("lr", "nan", "hyperparameter lr='nan' is invalid: expected a number > 0"),
    ("lr", "-inf", "hyperparameter lr='-inf' is invalid: expected a number > 0"),
    ("max_steps", "-2", "hyperparameter max_steps='-2' is invalid: expected an integer >= -1"),
    (
        "precision",
        "64",
        "hyperparameter precision='64' is invalid: expected one of auto, 32, 16-mixed, bf16-mixed",
    ),
    ("num_workers", "-1", "hyperparameter num_workers='-1' is invalid: expected an integer >= 0"),
    (
        "dist_timeout_s",
        "0",
        "hyperparameter dist_timeout_s='0' is invalid: expected an integer >= 1",
    ),
    (
        "checkpoint_every_n_steps",
        "0",
        "hyperparameter checkpoint_every_n_steps='0' is invalid: expected an integer >= 1",
    ),
    (
        "stall_timeout_s",
        "-1",
        "hyperparameter stall_timeout_s='-1' is invalid: expected an integer >= 0",
    ),
    (
        "checkpoint_every_minutes",
        "soon",
        "hyperparameter checkpoint_every_minutes='soon' is invalid: expected a number >= 0",
    ),
    (
        "optimizer",
        "adam",
        "unknown hyperparameter optimizer='adam': expected one of config, epochs, max_steps, batch_size, num_workers, lr, lr_key, lr_scaling, precision, seed, checkpoint_every_n_steps, checkpoint_every_minutes, startup_timeout_s, stall_timeout_s, dist_timeout_s, process_group_backend, sharding, shard_layers, activation_checkpointing, cpu_offload or a config override like model.init_args.<name>, data.init_args.<name>, trainer.<name>",
    ),
    (
        "lr_key",
        "lr",
        "hyperparameter lr_key='lr' is invalid: expected a config key like model.init_args.lr or optimizer.init_args.lr",
    ),
    (
        "model.init_args.opts",
        '{"a": 1}',
        "hyperparameter model.init_args.opts='{\"a\": 1}' is invalid: a JSON object, which the SageMaker toolkit rewrites to k=v pairs; set one key per entry (model.init_args.opts.<key>=<value>)",
    ),
    ("seed", "1e3", "hyperparameter seed='1e3' is invalid: expected an integer >= 0"),
]
#: The script's arguments, as the toolkit passes them -> message.
ARGV_CASES = [
    (["--epochs"], "argument --epochs has no value: expected --epochs VALUE"),
    (["epochs", "3"], "unexpected argument 'epochs': expected --key value pairs"),
    (["--epochs", "2", "--epochs", "3"], "hyperparameter epochs given twice ('2', '3')"),
    (["--"], "unexpected argument '--': expected --key value pairs"),
    (
        ["--lr-scaling", "cubic"],
        "hyperparameter lr_scaling='cubic' is invalid: expected one of linear, sqrt, none",
    ),
]


def _base() -> dict:
    return json.loads(CDK_JSON.read_text())["context"]


def _training(settings: dict) -> dict:
    context = _base()
    context["training"] = {**context.get("training", {}), **settings}
    return context


@pytest.mark.parametrize(
    ("overrides", "message"), CONFIG_CASES, ids=[m.split("=")[0] for _, m in CONFIG_CASES]
)
def test_configuration(overrides, message):
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_context(_training(overrides))
    assert str(info.value) == message


@pytest.mark.parametrize(("extra", "message"), CONTEXT_CASES)
def test_context_keys(extra, message):
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_context({**_base(), **extra})
    assert str(info.value) == message


@pytest.mark.parametrize(("fields", "message"), CLI_CASES)
def test_cli_overrides(fields, message):
    args = argparse.Namespace(
        **{
            "hp": [],
            "instance_type": None,
            "instance_count": None,
            "spot": None,
            "train_s3_uri": None,
            **fields,
        }
    )
    with pytest.raises(ExecutionInputError) as info:
        build_input(args, local_config())
    assert str(info.value) == message


@pytest.mark.parametrize(("data", "message"), EXECUTION_CASES)
def test_execution_input(data, message):
    with pytest.raises(ExecutionInputError) as info:
        validate_execution_input(data)
    assert str(info.value) == message


@pytest.mark.parametrize(("name", "value", "message"), HYPERPARAMETER_CASES)
def test_training_hyperparameter(name, value, message):
    with pytest.raises(contract.HyperparameterError) as info:
        contract.parse_hyperparameter(name, value)
    assert str(info.value) == message


@pytest.mark.parametrize(("argv", "message"), ARGV_CASES)
def test_script_arguments(argv, message):
    with pytest.raises(sm_env.ConfigError) as info:
        sm_env.read(argv, env={}, gpu_count=0)
    assert str(info.value) == message


def test_the_table_is_big_enough():
    total = sum(
        map(
            len,
            (
                CONFIG_CASES,
                CONTEXT_CASES,
                CLI_CASES,
                EXECUTION_CASES,
                HYPERPARAMETER_CASES,
                ARGV_CASES,
            ),
        )
    )
    assert total >= 30
