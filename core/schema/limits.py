"""Every limit and default the settings are checked against, written once.

The stack configuration (core/schema/stack.py), the execution input (core/execution_input.py),
the state machine's input checks (generated from those) and the operator CLI all read these.
"""

from __future__ import annotations

#: cdk.json's context object of training settings; overrides are `-c training.<field>=<value>`.
CONTEXT_KEY = "training"
#: The instance type a run gets when neither cdk.json nor the run input names one.
DEFAULT_INSTANCE_TYPE = "ml.p4d.24xlarge"

# --- CreateTrainingJob ---------------------------------------------------------------------------
#: A guard against typos (20 for 2): raise it deliberately if a bigger cluster is wanted.
MAX_INSTANCE_COUNT = 64
MAX_RUNTIME_S = 28 * 24 * 3600  # SageMaker's 28-day ceiling for MaxRuntime / MaxWait
MAX_KEEP_ALIVE_S = 3600  # warm-pool KeepAlivePeriodInSeconds ceiling
MAX_VOLUME_GB = 16384
#: HyperParameters: at most 100 entries, 256 characters per key and per value.
MAX_HYPERPARAMETERS = 100
MAX_HYPERPARAMETER_LEN = 256
#: Keys the workflow sets itself (script mode); a user value would be overwritten.
RESERVED_HYPERPARAMETER_PREFIX = "sagemaker_"
#: sagemaker_* framework parameters the workflow adds to every job (program, submit directory,
#: region, container log level, job name, instance type, launcher flag, one spare).
RESERVED_HYPERPARAMETERS = 8
#: What users and the configured defaults may use of SageMaker's 100, together.
MAX_USER_HYPERPARAMETERS = MAX_HYPERPARAMETERS - RESERVED_HYPERPARAMETERS
#: Training-job names; the workflow names jobs `<prefix>-<suffix>` (execution + attempt).
JOB_NAME_MAX_LEN = 63
JOB_NAME_PREFIX_MAX_LEN = 24
JOB_NAME_SUFFIX_MAX_LEN = JOB_NAME_MAX_LEN - JOB_NAME_PREFIX_MAX_LEN - 1
#: At most 20 channels; `train` and `code` are the workflow's own.
MAX_EXTRA_CHANNELS = 18

# --- The stack around the job --------------------------------------------------------------------
MAX_CAPACITY_RETRIES = 10
MAX_FLEXIBLE_WINDOW_MIN = 1440  # EventBridge Scheduler's flexible time window
MIN_AZS, MAX_AZS = 2, 4
SUBNET_PREFIX = 20  # each private subnet is a /20 (4091 usable addresses: EFA ENIs add up)
MAX_TAGS = 50
MAX_RETENTION_DAYS = 3650
#: CreateModelPackage: ModelApprovalStatus values; group names of at most 63 characters.
MODEL_APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
MODEL_PACKAGE_GROUP_MAX = 63
