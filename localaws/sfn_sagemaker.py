"""`arn:aws:states:::sagemaker:createTrainingJob(.sync)` for moto's ASL interpreter.

moto 5.2.5 forwards SageMaker tasks as plain request-response calls and refuses `.sync`. This
adds the service integration the way moto implements AWS Batch's: submit, then poll
DescribeTrainingJob until a terminal status. Like AWS, a Completed job returns the describe
output; a Failed or Stopped job fails the task with `States.TaskFailed` and the describe output
(FailureReason included) as its Cause; an API error surfaces as
`SageMaker.AmazonSageMakerException`. Pinned to moto's internals: moto is pinned exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Final

import botocore.session
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

# WaitForTaskToken too: moto's callback plumbing assumes its endpoint exists (as for Batch).
_SUPPORTED_PATTERNS: Final = {ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
_TERMINAL: Final = {"Completed", "Failed", "Stopped"}
_ACTIONS: Final = {"createtrainingjob": "CreateTrainingJob"}


def _supported_parameters(action: str) -> set[str] | None:
    operation = _ACTIONS.get(action.lower())
    if operation is None:
        return None
    model = botocore.session.get_session().get_service_model("sagemaker")
    return set(model.operation_model(operation).input_shape.members)


def _jsonable(value: Any) -> Any:
    """Timestamps as Step Functions renders them for SageMaker: epoch milliseconds."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    """SageMaker CreateTrainingJob, request-response and `.sync`."""

    def __init__(self) -> None:
        super().__init__(supported_integration_patterns=_SUPPORTED_PATTERNS)

    def _eval_wait_for_task_token(
        self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint
    ):
        # `.sync` only: no task token is ever sent. moto's helper thread would pass the wrong
        # value as a timeout; just wait until the task ends and interrupts the endpoint.
        return callback_endpoint.wait(timeout=None)

    def _get_supported_parameters(self) -> set[str] | None:
        return _supported_parameters(self.resource.api_action)

    def _from_error(self, env, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            error = "SageMaker.AmazonSageMakerException"
            message = ex.response["Error"].get("Message", str(ex))
            code = ex.response["Error"].get("Code", "")
            return FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error,
                        cause=f"{message} (Service: AmazonSageMaker; Error Code: {code})",
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                ),
            )
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    ):
        client = boto_client_for(
            region=resource_runtime_part.region,
            service="sagemaker",
            state_credentials=state_credentials,
        )
        response = getattr(client, self._get_boto_service_action())(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        env.stack.append(response)

    def _build_sync_resolver(
        self, env, resource_runtime_part, normalised_parameters, state_credentials
    ) -> Callable[[], Any]:
        client = boto_client_for(
            region=resource_runtime_part.region,
            service="sagemaker",
            state_credentials=state_credentials,
        )
        env.stack.pop()  # the CreateTrainingJob response; the describe output replaces it
        name = normalised_parameters["TrainingJobName"]

        def _resolve() -> dict | None:
            described = client.describe_training_job(TrainingJobName=name)
            described.pop("ResponseMetadata", None)
            if described["TrainingJobStatus"] not in _TERMINAL:
                return None
            described = _jsonable(described)
            if described["TrainingJobStatus"] == "Completed":
                return described
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                            error=StatesErrorNameType.StatesTaskFailed.to_name(),
                            cause=to_json_str(described),
                        )
                    ),
                )
            )

        return _resolve


def install() -> None:
    """Route the interpreter's `sagemaker` tasks to this service (idempotent)."""
    original = state_task_factory.state_task_service_for
    if getattr(original, "_localaws", False):
        return

    def state_task_service_for(service_name: str):
        if service_name == "sagemaker":
            return StateTaskServiceSageMaker()
        return original(service_name=service_name)

    state_task_service_for._localaws = True  # type: ignore[attr-defined]
    state_task_factory.state_task_service_for = state_task_service_for
