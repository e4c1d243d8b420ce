"""A deployed stack as a notebook sees it: its outputs, its settings, the request of one run.

`Stack.request(**overrides)` is the CreateTrainingJob the state machine would send for the same
execution input (core/job_request.py builds both); `model_trainer` and `pytorch_estimator`
translate it into SDK objects, so a notebook gets the stack's role, network, image, code bundle,
checkpoints, metrics and tags without copying a single id.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from core import outputs as output_names
from core.execution_input import (
    INPUT_KEYS,
    SDK_TRIGGER,
    ExecutionInputError,
    validate_execution_input,
)
from core.job_request import RunValues, plan_run, training_request
from core.workflow_settings import WorkflowSettings
from trainops.aws import Aws, StackNotFound, stack_outputs
from trainops.aws_errors import AWS_ERRORS, SDK_COMMAND, Context, explain
from trainops.run_input import RunDefaults, check_with_synth_rules
from trainops.sdk import offline
from trainops.sdk.errors import SdkError

#: What a notebook may override: the state machine's execution input keys.
OVERRIDES = tuple(k for k in INPUT_KEYS if k != "trigger")
#: How a notebook user wrote a hyperparameter, in the one-line errors.
HP_LABEL = "hyperparameter"


class Stack:
    """`Stack("SageMakerTraining")` on AWS (`profile=`, `region=`: as trainops' --profile,
    --region), `Stack(endpoint_url="http://127.0.0.1:PORT")` on the emulator (`python -m trainops
    emulator`). With an endpoint, every client of this process goes there: AWS_ENDPOINT_URL is
    set (sagemaker-core's clients take no endpoint argument)."""

    def __init__(
        self,
        name: str = "SageMakerTraining",
        endpoint_url: str | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
    ) -> None:
        if endpoint_url:
            offline.point_at(endpoint_url)
        self.name = name
        try:
            self.aws = Aws(region=region, endpoint_url=endpoint_url, profile=profile)
            self.outputs = stack_outputs(self.aws, name)
        except StackNotFound as exc:
            raise SdkError(str(exc)) from None
        except AWS_ERRORS as exc:  # the operator CLI's one line, e.g. an expired SSO session
            context = Context(SDK_COMMAND, name, profile)
            raise SdkError(explain(exc, context)) from None
        self.endpoint_url = self.aws.endpoint_url
        self.region = str(self.aws.region)
        self.profile = self.aws.profile
        raw = self.outputs.values.get(output_names.JOB_SETTINGS)
        if raw is None:
            raise SdkError(
                f"stack {name!r} has no {output_names.JOB_SETTINGS} output: redeploy it with this "
                "version (`cdk deploy`)"
            )
        self.settings = WorkflowSettings.from_json(json.loads(raw))
        self.defaults = RunDefaults.of_stack(self.outputs)

    def __repr__(self) -> str:
        where = self.endpoint_url or self.region
        return f"Stack({self.name!r} at {where}, backend={self.settings.backend})"

    # --- one run ---------------------------------------------------------------------------
    def run_input(self, **overrides: Any) -> dict[str, Any]:
        """The execution input these overrides make, checked as `trainops start` checks it."""
        unknown = sorted(set(overrides) - set(OVERRIDES))
        if unknown:
            raise SdkError(
                f"unknown override {unknown[0]!r}: the stack's runs take {', '.join(OVERRIDES)}"
            )
        data: dict[str, Any] = {"trigger": SDK_TRIGGER}
        for key, value in overrides.items():
            if value is not None:
                data[key] = value
        if "hyperparameters" in data:
            data["hyperparameters"] = _as_strings(data["hyperparameters"])
        try:
            check_with_synth_rules(data, None, hp_label=HP_LABEL)
            checked = validate_execution_input(
                data,
                defaults=self.defaults.hyperparameters,
                backend=self.defaults.backend,
                default_instance_type=self.defaults.instance_type,
            )
            check_with_synth_rules(checked, self.defaults, hp_label=HP_LABEL)
        except ExecutionInputError as exc:
            raise SdkError(str(exc)) from None
        return checked

    def plan(self, *, run_id: str | None = None, attempt: int = 0, **overrides: Any) -> RunValues:
        """The run's concrete values (job name, hyperparameters, resources, checkpoints)."""
        return plan_run(
            self.settings,
            self.run_input(**overrides),
            run_id=run_id or new_run_id(),
            attempt=attempt,
        )

    def request(self, **overrides: Any) -> dict[str, Any]:
        """The CreateTrainingJob request the state machine sends for this input."""
        return training_request(self.settings, self.plan(**overrides))

    def run(self, **overrides: Any) -> SdkRun:
        """A run for an SDK object: one id, one checkpoint prefix (overrides are checked with
        each request it makes)."""
        return SdkRun(self, overrides)

    # --- SDK objects -------------------------------------------------------------------------
    def model_trainer(self, **overrides: Any) -> Any:
        """SDK 3.x `sagemaker.train.ModelTrainer` that starts this stack's job: one object is one
        run; calling train() again is its next attempt (same checkpoints, a new job name)."""
        from trainops.sdk import v3

        return v3.model_trainer(self, overrides)

    def pytorch_estimator(self, **overrides: Any) -> Any:
        """SDK 2.x `sagemaker.pytorch.PyTorch` that starts this stack's job (same run model)."""
        from trainops.sdk import v2

        return v2.pytorch_estimator(self, overrides)

    def inputs(self, train_s3_uri: str | None = None) -> Any:
        """The data channels for `train(input_data_config=...)` (3.x) or `fit(...)` (2.x), in
        the form of the SDK installed here; the code channel is the SDK object's own."""
        plan = self.plan(train_s3_uri=train_s3_uri)
        channels = [
            c
            for c in training_request(self.settings, plan)["InputDataConfig"]
            if c["ChannelName"] != "code"
        ]
        if offline.installed_major() == 2:
            from trainops.sdk import v2

            return v2.inputs(channels)
        from trainops.sdk import v3

        return v3.inputs(channels)


class SdkRun:
    """One run started from an SDK object. Each attempt is a job of the state machine's scheme:
    `<prefix>-<run id>-<attempt>`, on the run's checkpoints (a retry resumes)."""

    def __init__(self, stack: Stack, overrides: Mapping[str, Any]) -> None:
        self.stack = stack
        self.overrides = dict(overrides)
        self.run_id = new_run_id()
        self.attempts = 0
        #: The name of the latest job started (None before the first).
        self.job_name: str | None = None

    def preview(self) -> dict[str, Any]:
        """The request of the next attempt, without counting it."""
        plan = self.stack.plan(run_id=self.run_id, attempt=self.attempts, **self.overrides)
        return training_request(self.stack.settings, plan)

    def next_attempt(self) -> dict[str, Any]:
        """The request of the next attempt; it counts as started."""
        request = self.preview()
        self.attempts += 1
        self.job_name = request["TrainingJobName"]
        return request


def new_run_id() -> str:
    """32 hex characters, like the state machine's MD5 run id (job names fit the same limit)."""
    return secrets.token_hex(16)


def _as_strings(hyperparameters: Any) -> Any:
    """Numbers become strings (`{"epochs": 2}` reads naturally in a notebook); anything else is
    left for the input rules to refuse with their one line."""
    if not isinstance(hyperparameters, Mapping):
        return hyperparameters
    return {
        k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        for k, v in hyperparameters.items()
    }
