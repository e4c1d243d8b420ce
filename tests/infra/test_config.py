"""TrainingConfig: defaults, auto resolution, context merging, and one-line errors."""

from __future__ import annotations

import pytest

from core import config as cfg
from core.config import ConfigError, TrainingConfig
from training import contract

SPOT = {"spot": True, "max_wait_s": 90000}

BAD = [
    (
        {"instance_type": "p4d.24xlarge"},
        "instance_type='p4d.24xlarge': expected a SageMaker instance type like ml.p4d.24xlarge",
    ),
    (
        {"instance_type": "ml.p9.48xlarge"},
        "instance_type='ml.p9.48xlarge': not a SageMaker training instance type"
        " (botocore's API model)",
    ),
    (
        {"instance_type": "ml.trn1.32xlarge"},
        "instance_type='ml.trn1.32xlarge': Trainium/Inferentia need the Neuron DLC;"
        " use a GPU or CPU type",
    ),
    ({"instance_count": 0}, "instance_count=0: expected an integer from 1 to 64"),
    ({"instance_count": "two"}, "instance_count='two': expected an integer"),
    ({"backend": "mpi"}, "backend='mpi': expected one of smddp, torchrun, none, auto"),
    (
        {"backend": "smddp", "instance_type": "ml.p5.48xlarge"},
        "backend='smddp': smddp runs only on ml.p4d.24xlarge, ml.p4de.24xlarge, ml.p3dn.24xlarge,"
        " not ml.p5.48xlarge (SMDDP does not support P5: use backend=torchrun)",
    ),
    (
        {"backend": "none", "instance_count": 2, "instance_type": "ml.g5.xlarge"},
        "backend='none': none runs one node only; use torchrun for instance_count > 1",
    ),
    (
        {"backend": "smddp", "framework_version": "2.4.0"},
        "framework_version='2.4.0': SMDDP ships only in PyTorch DLCs 2.0.1 to 2.3.0;"
        " use backend=torchrun for newer",
    ),
    (
        {"framework_version": "1.13.1"},
        "framework_version='1.13.1': expected a PyTorch training DLC version from 2.0.1 to 2.10.0"
        " (sagemaker-core image data) or auto",
    ),
    (
        {"framework_version": "2.3.0", "py_version": "py312"},
        "py_version='py312': PyTorch 2.3.0 DLCs exist for py311 only",
    ),
    ({"volume_size_gb": 0}, "volume_size_gb=0: expected an integer from 1 to 16384 GB"),
    (
        {"max_runtime_s": 2419201},
        "max_runtime_s=2419201: expected seconds from 1 to 2419200 (28 days)",
    ),
    (
        {"spot": True, "max_wait_s": 86400},
        "max_wait_s=86400: with spot=true expected max_runtime_s (86400) < max_wait_s <= 2419200",
    ),
    ({"max_wait_s": 90000}, "max_wait_s=90000: only with spot=true; expected 0 without spot"),
    (
        {**SPOT, "keep_alive_s": 600},
        "keep_alive_s=600: warm pools cannot be used with spot; expected 0",
    ),
    ({"keep_alive_s": 7200}, "keep_alive_s=7200: expected seconds from 0 to 3600"),
    (
        {**SPOT, "checkpointing": False},
        "checkpointing=False: spot=true needs checkpointing=true to resume",
    ),
    ({"network_isolation": "maybe"}, "network_isolation='maybe': expected true or false"),
    (
        {"input_mode": "Pipe"},
        "input_mode='Pipe': training/ reads files, not FIFOs: use File or FastFile",
    ),
    (
        {"hyperparameters": {"epochs": 5}},
        "hyperparameters.epochs=5: expected a string (SageMaker sends hyperparameters as strings):"
        ' write it as "5"',
    ),
    ({"hyperparameters": {"epochs": "0"}}, "hyperparameters.epochs='0': expected an integer >= 1"),
    ({"hyperparameters": {"lr": "-1"}}, "hyperparameters.lr='-1': expected a number > 0"),
    (
        {"hyperparameters": {"stall_timeout_s": "5m"}},
        "hyperparameters.stall_timeout_s='5m': expected an integer >= 0",
    ),
    (
        {"hyperparameters": {"checkpoint_every_minutes": "-1"}},
        "hyperparameters.checkpoint_every_minutes='-1': expected a number >= 0",
    ),
    (
        {"hyperparameters": {"config": "digits"}},
        "hyperparameters.config='digits': set training.config instead (the task config)",
    ),
    (
        {"hyperparameters": {"note": "x"}},
        "hyperparameters.note='x': expected a runner key ("
        + ", ".join(contract.HYPERPARAMETERS)
        + ") or a config override like model.init_args.lr, data.init_args.batch_size,"
        " trainer.max_epochs",
    ),
    (
        {"hyperparameters": {"model.init_args.hidden": '{"a": 1}'}},
        "hyperparameters.model.init_args.hidden='{\"a\": 1}': a JSON object, which the SageMaker"
        " toolkit rewrites to k=v pairs; set one key per entry"
        " (model.init_args.hidden.<key>=<value>)",
    ),
    (
        {"hyperparameters": {"lr_key": "lr"}},
        "hyperparameters.lr_key='lr': expected a config key like model.init_args.lr",
    ),
    (
        {"hyperparameters": {"precision": "fp8"}},
        "hyperparameters.precision='fp8': expected one of auto, 32, 16-mixed, bf16-mixed",
    ),
    (
        {"hyperparameters": {"sagemaker_program": "x.py"}},
        "hyperparameters.sagemaker_program='x.py': sagemaker_* keys are set by the workflow,"
        " not by users",
    ),
    (
        {"hyperparameters": {"note": "x" * 257}},
        "hyperparameters.note='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...xxxxxxxxx':"
        " expected 1 to 256 characters",
    ),
    (
        {"hyperparameters": {f"k{i}": "1" for i in range(93)}},
        "hyperparameters='93 entries': expected at most 92 (100 minus 8 sagemaker_* entries the"
        " workflow adds)",
    ),
    (
        {"hyperparameters": {"process_group_backend": "smddp"}, "instance_type": "ml.p5.48xlarge"},
        "hyperparameters.process_group_backend='smddp': smddp needs backend=smddp",
    ),
    (
        {"schedule_cron": "0 3 * * ? *"},
        "schedule_cron='0 3 * * ? *': expected cron(minutes hours day-of-month month day-of-week"
        " year) or off",
    ),
    (
        {"schedule_cron": "cron(0 3 * * *)"},
        "schedule_cron='cron(0 3 * * *)': expected cron(minutes hours day-of-month month"
        " day-of-week year) or off; got 5 fields, need 6",
    ),
    (
        {"schedule_cron": "cron(0 25 ? * SUN *)"},
        "schedule_cron='cron(0 25 ? * SUN *)': hours field '25' is not valid cron syntax",
    ),
    (
        {"schedule_cron": "cron(0 3 * * SUN *)"},
        "schedule_cron='cron(0 3 * * SUN *)': exactly one of day-of-month and day-of-week"
        " must be ?",
    ),
    (
        {"schedule_timezone": "Mars/Olympus"},
        "schedule_timezone='Mars/Olympus': expected an IANA time zone like Europe/Berlin",
    ),
    (
        {"schedule_flexible_window_min": 2000},
        "schedule_flexible_window_min=2000: expected an integer from 0 to 1440 minutes (0 = off)",
    ),
    (
        {"notification_email": "not-an-email"},
        "notification_email='not-an-email': expected an e-mail address or none",
    ),
    (
        {"vpc_cidr": "10.0.0.0/8"},
        "vpc_cidr='10.0.0.0/8': expected a private IPv4 network /16 to /19 (a /20 per AZ)",
    ),
    (
        {"vpc_cidr": "8.8.0.0/16"},
        "vpc_cidr='8.8.0.0/16': expected a private IPv4 network /16 to /19 (a /20 per AZ)",
    ),
    ({"max_azs": 1}, "max_azs=1: expected 2 to 4 availability zones"),
    ({"removal_policy": "snapshot"}, "removal_policy='snapshot': expected one of retain, destroy"),
    (
        {"tags": {"aws:owner": "me"}},
        "tags.aws:owner='me': tag keys starting with aws: are reserved by AWS",
    ),
    (
        {"job_name_prefix": "my_job"},
        "job_name_prefix='my_job': expected 1-24 letters, digits and inner hyphens (job names are"
        " <prefix>-<suffix>, at most 63 characters)",
    ),
    (
        {"stack_name": "1stack"},
        "stack_name='1stack': expected a CloudFormation stack name ([A-Za-z][A-Za-z0-9-]*)",
    ),
    ({"spot": "yes"}, "spot='yes': expected true or false"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_configuration_one_line_error(overrides, message):
    with pytest.raises(ConfigError) as info:
        TrainingConfig(**overrides)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_defaults_resolve_to_smddp_on_p4d():
    config = TrainingConfig()
    assert (config.backend, config.framework_version, config.py_version) == (
        "smddp",
        "2.3.0",
        "py311",
    )
    assert config.image_family == "smddp" and config.processor == "gpu"
    assert config.launcher_flag == contract.LAUNCHER_FLAGS["smddp"]
    assert config.gpus_per_instance == 8


@pytest.mark.parametrize(
    ("instance_type", "count", "backend"),
    [
        ("ml.p5.48xlarge", 2, "torchrun"),
        ("ml.p4de.24xlarge", 1, "smddp"),
        ("ml.p3dn.24xlarge", 4, "smddp"),
        ("ml.g5.xlarge", 1, "none"),
        ("ml.g5.12xlarge", 1, "torchrun"),
        ("ml.m5.xlarge", 1, "none"),
        ("ml.c5.2xlarge", 2, "torchrun"),
    ],
)
def test_auto_backend(instance_type, count, backend):
    config = TrainingConfig(instance_type=instance_type, instance_count=count)
    assert config.backend == backend
    newest = max(cfg.pytorch_training_images()["versions"], key=cfg._version_tuple)
    expected = "2.3.0" if backend == "smddp" else newest
    assert config.framework_version == expected
    assert config.image_family == ("smddp" if backend == "smddp" else "current")


def test_smddp_matrix_accepts_older_dlcs():
    assert TrainingConfig(framework_version="2.0.1").py_version == "py310"
    assert TrainingConfig(framework_version="2.2").framework_version == "2.2.0"  # alias


def test_spot_valid():
    config = TrainingConfig(spot=True, max_runtime_s=3600, max_wait_s=7200)
    assert (config.spot, config.max_wait_s) == (True, 7200)
    assert cfg.validate_spot("true", "3600", "7200") == (True, 3600, 7200)


def test_schedule_forms():
    assert TrainingConfig(schedule_cron="off").schedule_cron is None
    for cron in (
        "cron(0 3 ? * SUN *)",
        "cron(15,45 */2 1-15 JAN-MAR ? 2026-2030)",
        "cron(0 12 L * ? *)",
        "cron(0 6 ? * 2#1 *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
    ):
        assert cfg.validate_schedule(cron) == cron


def test_context_merge_and_cli_strings():
    context = {
        "training": {"instance_count": 2, "hyperparameters": {"epochs": "3"}, "tags": {"a": "b"}},
        "training.instance_count": "4",
        "training.spot": "true",
        "training.max_wait_s": "100000",
        "training.hyperparameters.lr": "0.01",
        "training.tags": '{"team": "ml"}',
        "training.schedule_cron": "off",
        "@aws-cdk/aws-s3:createDefaultLoggingPolicy": True,  # other context is ignored
    }
    config = TrainingConfig.from_context(context)
    assert config.instance_count == 4 and config.spot is True and config.max_wait_s == 100000
    assert config.hyperparameters == {"epochs": "3", "lr": "0.01"}
    assert config.tags == {"team": "ml"}
    assert config.schedule_cron is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"training": {"instance_cnt": 4}},
            "training.instance_cnt=4: unknown training setting (did you mean instance_count?);"
            " known: see TrainingConfig in core/config.py",
        ),
        (
            {"training.instanc_type": "ml.p5.48xlarge"},
            "training.instanc_type='ml.p5.48xlarge': unknown training setting (did you mean"
            " instance_type?); known: see TrainingConfig in core/config.py",
        ),
        (
            {"instance_count": "4"},
            "instance_count='4': settings go under training.: use -c training.instance_count=...",
        ),
        (
            {"training.spot.x": "1"},
            "training.spot.x='1': unknown training setting (did you mean spot?); known: see"
            " TrainingConfig in core/config.py",
        ),
        ({"training": "[]"}, "training=[]: expected an object of training settings"),
    ],
)
def test_context_errors(context, message):
    with pytest.raises(ConfigError) as info:
        TrainingConfig.from_context(context)
    assert str(info.value) == message


def test_every_contract_hyperparameter_has_a_rule_and_valid_default():
    # Free-form strings: the task config (set as training.config), the config key of the lr and
    # the layer classes to shard (checked against the model in the job).
    free_form = {"config", "lr_key", "shard_layers"}
    for name, spec in contract.HYPERPARAMETERS.items():
        if spec.kind in ("int", "float"):
            # The rule core/config.py reads from the help agrees with the one the runner applies.
            kind = {"int": "integer", "float": "float"}[spec.kind]
            op = ">" if spec.exclusive_minimum else ">="
            assert cfg.hyperparameter_rule(name) == (kind, op, spec.minimum), name
        else:
            assert spec.choices or name in free_form, name
        if spec.default is None:
            # Shortcuts (epochs, lr, ...) take their default from the task config; shard_layers
            # has none (shard each top-level child only).
            assert spec.target or name == "shard_layers", name
            continue
        if name == "config":
            continue  # the workflow adds it from training.config; users cannot set it
        assert cfg.validate_hyperparameter(name, spec.default) == spec.default
        assert contract.parse_hyperparameter(name, spec.default) is not None
    defaults = {k: v for k, v in contract.runner_defaults().items() if k != "config"}
    assert cfg.validate_hyperparameters(defaults) == defaults
    assert len(contract.HYPERPARAMETERS) <= cfg.MAX_USER_HYPERPARAMETERS


def test_public_validators():
    assert cfg.validate_instance_type("ml.p5.48xlarge") == "ml.p5.48xlarge"
    assert cfg.validate_instance_count("3") == 3
    with pytest.raises(ConfigError):
        cfg.validate_instance_count(65)
    assert cfg.validate_keep_alive(1800, spot=False) == 1800
    assert cfg.validate_job_name_prefix("a" * cfg.JOB_NAME_PREFIX_MAX_LEN)
    assert cfg.JOB_NAME_PREFIX_MAX_LEN + 1 + cfg.JOB_NAME_SUFFIX_MAX_LEN == 63


def test_limits_agree_with_the_execution_input():
    from core import execution_input

    assert cfg.MAX_INSTANCE_COUNT == execution_input.MAX_INSTANCE_COUNT
    assert cfg.MAX_USER_HYPERPARAMETERS <= execution_input.MAX_USER_HYPERPARAMETERS
    assert cfg.SMDDP_INSTANCE_TYPES == execution_input.SMDDP_INSTANCE_TYPES


def test_config_module_has_no_cdk_import():
    import subprocess
    import sys

    code = "import sys, core.config; print('aws_cdk' in sys.modules, 'sagemaker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_cdk_json_defaults_are_valid():
    from infra.stack import app_context

    config = TrainingConfig.from_context(app_context())
    assert config.instance_type == "ml.p4d.24xlarge" and config.backend == "smddp"
