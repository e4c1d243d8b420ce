"""The contract between the infrastructure and the training script.

Hyperparameter keys, channel names, the checkpoint location, the metric log format and the
SageMaker launcher flags live here, and only here. The CDK app, the operator CLI and the
training script all import this module, so it must stay free of torch and CDK imports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from training.errors import ConfigError

# --- Code bundle -------------------------------------------------------------------------------
#: Entry script, relative to the root of sourcedir.tar.gz (the toolkit's `sagemaker_program`).
ENTRY_POINT = "training/train.py"
#: Inside the bundle: the wheels it carries, next to requirements.txt (which installs only them).
WHEELHOUSE_DIR = "wheels"
#: The input channel the code bundle arrives on (SageMaker downloads it; the job needs no network).
CODE_CHANNEL = "code"

# --- Channels ----------------------------------------------------------------------------------
TRAIN_CHANNEL = "train"
#: Optional: a held-out split; without it a deterministic split of `train` is used.
VALIDATION_CHANNEL = "validation"
CHANNELS = (TRAIN_CHANNEL, VALIDATION_CHANNEL)

# --- Locations inside the container ------------------------------------------------------------
#: The host's SageMaker folder (the toolkit's base dir); the local executor moves it per
#: simulated host and says where in the env var SAGEMAKER_BASE_DIR (as the toolkit reads it).
SAGEMAKER_ROOT = "/opt/ml"
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
#: Where SageMaker puts each input channel: <CHANNEL_ROOT>/<channel name>/...
CHANNEL_ROOT = "/opt/ml/input/data"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
CHECKPOINT_FILE = "last.ckpt"
#: The checkpoint before last.ckpt, kept so a truncated or corrupt last.ckpt is not fatal.
PREVIOUS_CHECKPOINT_FILE = "previous.ckpt"
#: The model dir (model.tar.gz), written by global rank 0 alone: the LightningModule's weights,
#: the resolved task config (reloads the classes) and a JSON record of the run.
MODEL_FILE = "model.pt"
MODEL_CONFIG_FILE = "config.yaml"
MODEL_INFO_FILE = "model.json"
#: TensorBoardOutputConfig.LocalPath: SageMaker uploads what the job writes here while it runs,
#: to <S3OutputPath>/<job name>/TENSORBOARD_S3_FOLDER/. The runner logs there from rank 0.
TENSORBOARD_DIR = "/opt/ml/output/tensorboard"
TENSORBOARD_S3_FOLDER = "tensorboard-output"


def tensorboard_s3_uri(s3_output_path: str, job_name: str) -> str:
    """Where SageMaker puts a job's TensorBoard files: `<S3OutputPath>/<job>/<folder>/`."""
    return f"{s3_output_path.rstrip('/')}/{job_name}/{TENSORBOARD_S3_FOLDER}/"


# --- Distribution (SageMaker framework parameters, i.e. launcher flags) --------------------------
#: Distribution backend -> the toolkit hyperparameter that selects its launcher.
LAUNCHER_FLAGS = {
    "smddp": "sagemaker_distributed_dataparallel_enabled",  # mpirun + smddprun
    "torchrun": "sagemaker_torch_distributed_enabled",  # torchrun, NCCL on GPU
}
BACKENDS = ("smddp", "torchrun", "none")
#: The `sharding` hyperparameter's values (none = DDP, every process holds a full copy).
SHARDING_MODES = ("none", "fsdp", "hybrid")


#: The choices of an on/off key, as SageMaker sends them (the toolkit may pass "False"/"True").
BOOLEAN_CHOICES = ("false", "true")


@dataclass(frozen=True)
class Hyperparameter:
    """One runner hyperparameter: its default (as SageMaker sends it, a string) and rule.

    `kind` is "int", "float" or "str"; `minimum` bounds numbers (inclusive, or exclusive when
    `exclusive_minimum`); `choices`, when given, lists every allowed string; `help` says what
    the key does (its rule in words is `rule()`, never repeated in the help). A `target` makes the
    key a shortcut for one config override (`epochs` -> `trainer.max_epochs`); shortcuts have no
    default of their own (the task config holds it).
    """

    default: str | None
    help: str
    choices: tuple[str, ...] = ()
    kind: str = "str"
    minimum: float | None = None
    exclusive_minimum: bool = False
    target: str | None = None

    def rule(self) -> str:
        """What is allowed, in words: `an integer >= 1`, `one of linear, sqrt, none`."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        noun = {"int": "an integer", "float": "a number"}.get(self.kind, "a string")
        if self.minimum is None:
            return noun
        bound = self.minimum if self.kind == "float" else int(self.minimum)
        return f"{noun} {'>' if self.exclusive_minimum else '>='} {bound}"


# --- The task config -----------------------------------------------------------------------------
#: Built-in tasks: `config=<name>` selects training/tasks/<name>.yaml inside the bundle.
BUILTIN_TASKS = ("digits", "donut")
TASKS_DIR = "training/tasks"
#: Sections of a LightningCLI config that hyperparameters may override (`model.init_args.lr`).
OVERRIDE_SECTIONS = ("model", "data", "trainer", "optimizer", "lr_scheduler")
_OVERRIDE_KEY = re.compile("(?:" + "|".join(OVERRIDE_SECTIONS) + r")(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
#: Names a user project cannot use at its top level: the bundle's own entries.
RESERVED_TOP_LEVEL = ("training", WHEELHOUSE_DIR, "requirements.txt")
#: Folders of a project whose packages the job imports: its root, and `src/` (the src layout).
PACKAGE_ROOTS = (".", "src")


def builtin_config(name: str) -> str:
    """The bundle path of a built-in task's config."""
    return f"{TASKS_DIR}/{name}.yaml"


def is_override_key(key: str) -> bool:
    """`model.init_args.lr`, `data.init_args.batch_size`, `trainer.max_epochs`, ..."""
    return bool(_OVERRIDE_KEY.fullmatch(key))


#: Hyperparameters of the runner itself. Values travel as strings (CreateTrainingJob); every
#: other key is a dotted override of the task config (`is_override_key`).
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "config": Hyperparameter(
        "digits",
        "the task config: a built-in task (" + ", ".join(BUILTIN_TASKS) + ") or the path of a "
        "LightningCLI YAML file inside the code bundle (the user project)",
    ),
    "epochs": Hyperparameter(
        None,
        "number of training epochs; shortcut for trainer.max_epochs",
        kind="int",
        minimum=1,
        target="trainer.max_epochs",
    ),
    "max_steps": Hyperparameter(
        None,
        "stop after this many optimizer steps in total, -1 = no limit; "
        "shortcut for trainer.max_steps",
        kind="int",
        minimum=-1,
        target="trainer.max_steps",
    ),
    "batch_size": Hyperparameter(
        None,
        "per-device batch size; shortcut for data.init_args.batch_size",
        kind="int",
        minimum=1,
        target="data.init_args.batch_size",
    ),
    "num_workers": Hyperparameter(
        None,
        "data loader workers per process; shortcut for data.init_args.num_workers",
        kind="int",
        minimum=0,
        target="data.init_args.num_workers",
    ),
    "lr": Hyperparameter(
        None,
        "base learning rate for one process; shortcut for the lr_key override",
        kind="float",
        minimum=0,
        exclusive_minimum=True,
        target="<lr_key>",
    ),
    "lr_key": Hyperparameter(
        "model.init_args.lr",
        "the config key holding the base learning rate, scaled by lr_scaling",
    ),
    "lr_scaling": Hyperparameter(
        "linear", "how the learning rate grows with world size", ("linear", "sqrt", "none")
    ),
    "precision": Hyperparameter(
        "auto",
        "numeric precision; auto = bf16-mixed on bf16 GPUs, 16-mixed on older GPUs, 32 on CPU",
        ("auto", "32", "16-mixed", "bf16-mixed"),
    ),
    "seed": Hyperparameter("42", "random seed", kind="int", minimum=0),
    "checkpoint_every_n_steps": Hyperparameter(
        "50",
        "write last.ckpt every N optimizer steps, and at each epoch end",
        kind="int",
        minimum=1,
    ),
    "checkpoint_every_minutes": Hyperparameter(
        "10.0",
        "also write last.ckpt once this many minutes of training passed since the last one; "
        "bounds the work a stop or a lost instance costs; 0 = off",
        kind="float",
        minimum=0,
    ),
    "startup_timeout_s": Hyperparameter(
        "1800",
        "stall watchdog: fail the job when no training step has finished this many seconds "
        "after the runner started; 0 = off",
        kind="int",
        minimum=0,
    ),
    "stall_timeout_s": Hyperparameter(
        "900",
        "stall watchdog: fail the job when no training step, validation batch or checkpoint "
        "finished for this many seconds; 0 = off",
        kind="int",
        minimum=0,
    ),
    "dist_timeout_s": Hyperparameter(
        "600",
        "timeout for process-group init and collectives, seconds",
        kind="int",
        minimum=1,
    ),
    "process_group_backend": Hyperparameter(
        "auto",
        "torch.distributed backend; auto = smddp under the SMDDP launcher, nccl on GPU, "
        "gloo on CPU",
        ("auto", "smddp", "nccl", "gloo"),
    ),
    "sharding": Hyperparameter(
        "none",
        "how parameters, gradients and optimizer state are spread: none = a full copy per "
        "process (DDP); fsdp = sharded over every process; hybrid = sharded within a node, "
        "replicated across nodes",
        SHARDING_MODES,
    ),
    "shard_layers": Hyperparameter(
        None,
        "with sharding: comma-separated layer classes sharded (and checkpointed) one by one, by "
        "class name or dotted path (Block, torch.nn.TransformerEncoderLayer)",
    ),
    "activation_checkpointing": Hyperparameter(
        "false",
        "with sharding: recompute the activations of each shard_layers layer in the backward pass",
        BOOLEAN_CHOICES,
    ),
    "cpu_offload": Hyperparameter(
        "false",
        "with sharding on GPU: keep sharded parameters and optimizer state in host memory",
        BOOLEAN_CHOICES,
    ),
}


def runner_defaults() -> dict[str, str]:
    """The runner keys that have defaults, as SageMaker sends them (the workflow adds them)."""
    return {k: spec.default for k, spec in HYPERPARAMETERS.items() if spec.default is not None}


class HyperparameterError(ConfigError):
    """A hyperparameter value that breaks its rule; the message is one line for the operator."""


def _json_container(value: str) -> str | None:
    text = value.strip()
    if not text.startswith("{"):
        return None
    try:
        decoded = json.loads(text)
    except ValueError:
        return None
    return "object" if isinstance(decoded, dict) else None


def parse_hyperparameter(name: str, value: str) -> int | float | str:
    """Check one hyperparameter (as the string SageMaker sends) and return its typed value.

    A dotted config override comes back as the string (the task's class signatures check it);
    a runner key is typed by its rule. Raises HyperparameterError with one line naming the key,
    the value and what is allowed: `hyperparameter epochs='ten' is invalid: expected an integer
    >= 1`.
    """
    if is_override_key(name):
        if _json_container(value):
            raise HyperparameterError(
                f"hyperparameter {name}={value!r} is invalid: a JSON object, which the SageMaker "
                f"toolkit rewrites to k=v pairs; set one key per entry ({name}.<key>=<value>)"
            )
        return value
    spec = HYPERPARAMETERS.get(name)
    if spec is None:
        raise HyperparameterError(
            f"unknown hyperparameter {name}={value!r}: expected one of "
            + ", ".join(HYPERPARAMETERS)
            + " or a config override like model.init_args.<name>, data.init_args.<name>, "
            "trainer.<name>"
        )
    bad = HyperparameterError(f"hyperparameter {name}={value!r} is invalid: expected {spec.rule()}")
    text = str(value).strip()
    if spec.choices:
        if spec.choices == BOOLEAN_CHOICES:
            # The toolkit JSON-decodes every value: "false" reaches the script as Python's False.
            text = text.lower()
        if text not in spec.choices:
            raise bad
        return text
    typed: int | float | str
    try:
        if spec.kind == "int":
            typed = int(text)
        elif spec.kind == "float":
            typed = float(text)
            if typed != typed or typed in (float("inf"), float("-inf")):
                raise bad
        else:
            if name == "lr_key" and not is_override_key(text):
                raise HyperparameterError(
                    f"hyperparameter lr_key={value!r} is invalid: expected a config key like "
                    "model.init_args.lr or optimizer.init_args.lr"
                )
            if not text:
                raise bad
            return text
    except HyperparameterError:
        raise
    except ValueError:
        raise bad from None
    if spec.minimum is not None and (
        typed < spec.minimum or (spec.exclusive_minimum and typed == spec.minimum)
    ):
        raise bad
    return typed


def moved_path(value: str, base_dir: str) -> str:
    """A path under SAGEMAKER_ROOT, as the same path under a moved base dir; other values
    as they are."""
    if value == SAGEMAKER_ROOT or value.startswith(SAGEMAKER_ROOT + "/"):
        return base_dir.rstrip("/") + value[len(SAGEMAKER_ROOT) :]
    return value


# --- Environment knobs the local runner sets (none of them exists on SageMaker) ----------------
#: Overrides the checkpoint folder (default CHECKPOINT_DIR on SageMaker, or
#: $SAGEMAKER_BASE_DIR/checkpoints when the toolkit's base dir is moved).
CHECKPOINT_DIR_ENV = "TRAINING_CHECKPOINT_DIR"
#: Where the prepared-data cache lives (one per node); default: a per-host temp folder.
CACHE_DIR_ENV = "TRAINING_CACHE_DIR"
#: Outside SageMaker: the root of the local model/output/checkpoint folders (default .runs/local).
LOCAL_ROOT_ENV = "TRAINING_LOCAL_ROOT"
#: Test hook: each rank writes rank-<N>.json (parameter hash, step, cluster) there, and
#: prepare_data leaves a marker per call.
DEBUG_DIR_ENV = "TRAINING_DEBUG_DIR"

#: torchrun's static rendezvous reads this (`--rdzv-conf`); `timeout=N` bounds how long a host
#: waits for the others before the job fails (torch's default: 600 s).
RDZV_CONF_ENV = "PET_RDZV_CONF"
#: What a host that cannot reach its peers most likely means on SageMaker (VPC jobs).
NETWORK_HINT = (
    "hosts could not reach each other: the security group must allow all traffic from itself "
    "(inbound and outbound), and every host must reach the master host's port"
)
#: In the script's error line when a rank failed only because a peer died first.
PEER_LOST_MARKER = "lost a peer"
#: Error text of torch.distributed / torchrun that means "could not reach a peer in time".
NETWORK_FAILURE_MARKERS = (
    "DistNetworkError",
    "RendezvousTimeoutError",
    "RendezvousConnectionError",
    "timed out while trying to connect",
    "socket has timed out",
    "waiting for clients",
    "Connection refused",
    "connectFullMesh",
)


def explain_network_failure(text: str) -> str | None:
    """NETWORK_HINT when `text` (an error line or a failure file) reads like a rendezvous or
    process-group init failure; None otherwise. For the operator side, where torchrun's own
    traceback (the script never started) is all there is."""
    if "security group must allow all traffic from itself" in text:
        return None  # already explained (the script's own error line)
    if any(marker.lower() in text.lower() for marker in NETWORK_FAILURE_MARKERS):
        return NETWORK_HINT
    return None


# --- Metrics -----------------------------------------------------------------------------------
#: Every metric line the script prints starts with this tag, then `name=value` pairs: `step`,
#: every scalar the task logs (sorted), then the runner's own.
METRIC_LINE_PREFIX = "[metrics]"
#: What the runner adds to every metric line after training epochs.
RUNNER_METRICS = ("epoch", "samples_per_sec")
#: Where SageMaker publishes what the MetricDefinitions match (CloudWatch metrics, one point per
#: matched log line, dimension TrainingJobName); instance metrics use dimension Host.
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
METRICS_JOB_DIMENSION = "TrainingJobName"
#: CreateTrainingJob takes at most this many MetricDefinitions.
MAX_METRIC_DEFINITIONS = 40
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_METRIC_NAME = re.compile(r"[^\s=]{1,200}")


def metric_name(name: str) -> str:
    """A logged metric's name as it appears in a metric line (no spaces or `=`)."""
    return re.sub(r"[\s=]", "_", str(name))


def is_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.fullmatch(name))


def format_metric_line(metrics: dict[str, float], step: int) -> str:
    """Render one metric line: `[metrics] step=12 val_acc=0.9812 ... epoch=3 samples_per_sec=..`."""
    parts = [f"step={int(step)}"]
    task = sorted(k for k in metrics if k not in RUNNER_METRICS and k != "step")
    names = [*task, *(k for k in RUNNER_METRICS if k in metrics)]
    parts += [f"{metric_name(name)}={float(metrics[name]):.6g}" for name in names]
    return f"{METRIC_LINE_PREFIX} " + " ".join(parts)


def metric_definitions(names: tuple[str, ...] | list[str] = ()) -> list[dict[str, str]]:
    """SageMaker MetricDefinitions (Name/Regex) for the task's `names` and the runner's own."""
    prefix = re.escape(METRIC_LINE_PREFIX)
    wanted = [*dict.fromkeys([*names, *RUNNER_METRICS])]
    return [{"Name": name, "Regex": rf"{prefix}.* {re.escape(name)}={_NUMBER}"} for name in wanted]


def parse_metric_line(line: str) -> dict[str, float]:
    """Inverse of `format_metric_line`, for the operator side and tests; {} if not a metric line."""
    if not line.lstrip().startswith(METRIC_LINE_PREFIX):
        return {}
    out: dict[str, float] = {}
    for token in line.split(METRIC_LINE_PREFIX, 1)[1].split():
        key, sep, value = token.partition("=")
        if sep:
            try:
                out[key] = float(value)
            except ValueError:
                continue
    return out
