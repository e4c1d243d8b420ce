"""The runner's errors: one base whose message is the job's whole failure reason.

A `TrainingError` raised anywhere in the job (the runner's own checks, or a user's data module
or model in `__init__`, `prepare_data` or `setup`) ends it with exit status 2 and one line
`error: <message>` on stderr, which SageMaker reports as the job's FailureReason; no traceback.
Any other exception prints its traceback first (exit status 1). A user's project imports it as
the runner's public API: `from training.errors import DataError`.

Standard library only: the operator side and the CDK-free core import the runner's rules too.
"""

from __future__ import annotations


class TrainingError(Exception):
    """A failure the message explains in one line (what, where it came from, what is allowed);
    the job reports it without a traceback."""


class ConfigError(TrainingError, ValueError):
    """A bad setting: hyperparameter, config key or value, environment, cluster shape."""


class DataError(TrainingError, ValueError):
    """Unusable input data: the message names the file (and line) and what was expected."""
