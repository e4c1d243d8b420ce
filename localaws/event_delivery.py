"""EventBridge deliveries moto 5.2.5 does not make, made here so the production loop runs offline.

- Step Functions emits no "Step Functions Execution Status Change" events in moto: when an
  execution ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) the event AWS documents is put on the
  default bus, with the detail fields AWS sends (status, executionArn, stateMachineArn, name,
  start/stop dates in epoch ms, input, output, error, cause).
- moto's rules deliver to logs, archives, SQS and buses only (any other target raises, and the
  S3 sender swallows it): Step Functions targets start an execution with the target's Input
  (EventBridge names it with a fresh id), SNS targets publish the transformed message.
- StopExecution's error and cause are dropped by moto's handler (it stops with ""): kept here,
  so the execution and its status-change event say why it was aborted.

Roles on targets are not evaluated (moto enforces no IAM); the rules' patterns are moto's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import boto3
from moto import settings
from moto.events.models import Rule, events_backends
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.arns import parse_arn

STATUS_CHANGE = "Step Functions Execution Status Change"
LOG = logging.getLogger(__name__)

_original_send = Rule.send_to_targets
_original_terminated = BaseExecutionWorkerCommunication.terminated
_original_stop_response = StepFunctionResponse.stop_execution
_stop_reason = threading.local()


def _client(service: str, region: str) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{settings.moto_server_port()}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _payload(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """What the target receives: constant Input, InputTransformer's output, or the event."""
    if "Input" in target:
        return target["Input"]
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer["InputTemplate"], transformer.get("InputPathsMap", {}), event)
    return event


def transform(template: str, paths: dict[str, str], event: dict[str, Any]) -> str:
    """EventBridge's InputTransformer: a placeholder inside a JSON string is replaced by the raw
    text, one standing as a value by its JSON (strings quoted, a missing path `null`). moto's
    own parser inserts raw text everywhere, which breaks `{"status": <status>}`."""
    from jsonpath_ng.ext import parse

    values = {}
    for name, path in paths.items():
        found = parse(path).find(event)
        values[name] = found[0].value if found else None
    out, in_string, i = [], False, 0
    while i < len(template):
        char = template[i]
        if char == '"' and (i == 0 or template[i - 1] != "\\"):
            in_string = not in_string
        if char == "<":
            end = template.find(">", i)
            name = template[i + 1 : end] if end > i else ""
            if name in values:
                value = values[name]
                if in_string:
                    out.append(value if isinstance(value, str) else json.dumps(value))
                else:
                    out.append(json.dumps(value, default=str))
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def _as_text(payload: Any) -> str:
    return payload if isinstance(payload, str) else json.dumps(payload, default=str)


def _send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
    ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("states", "sns")]
    if ours and self.event_pattern.matches_event(original_event):
        for target in ours:
            arn = parse_arn(target["Arn"])
            text = _as_text(_payload(target, original_event))
            try:
                if arn.service == "states":
                    _client("stepfunctions", arn.region).start_execution(
                        stateMachineArn=target["Arn"], name=uuid.uuid4().hex, input=text
                    )
                else:
                    _client("sns", arn.region).publish(TopicArn=target["Arn"], Message=text)
            except Exception:  # EventBridge retries, then the DLQ; here: log and go on
                LOG.exception("delivery of rule %s to %s failed", self.name, target["Arn"])
    others = [t for t in self.targets if t not in ours]
    if others:
        saved, self.targets = self.targets, others
        try:
            _original_send(self, original_event, transform_input)
        finally:
            self.targets = saved


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def _terminated(self: BaseExecutionWorkerCommunication) -> None:
    _original_terminated(self)
    execution = self.execution
    try:
        status = getattr(execution.exec_status, "value", execution.exec_status)
        error, cause = execution.error, execution.cause
        if status == "ABORTED":  # StopExecution's error and cause, as AWS reports them
            stopped = execution.exec_worker.env.program_state()
            error, cause = getattr(stopped, "error", None), getattr(stopped, "cause", None)
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine.arn,
            "name": execution.name,
            "status": status,
            "startDate": _millis(execution.start_date),
            "stopDate": _millis(execution.stop_date),
            "input": _as_text(execution.input_data),
            "output": None if execution.output is None else _as_text(execution.output),
            "error": error,
            "cause": cause,
        }
        events_backends[execution.account_id][execution.region_name].put_events(
            [
                {
                    "Source": "aws.states",
                    "DetailType": STATUS_CHANGE,
                    "Detail": json.dumps(detail, default=str),
                    "Resources": [execution.exec_arn],
                }
            ]
        )
    except Exception:  # an event that cannot be sent must not break the execution
        LOG.exception("status-change event of %s not sent", execution.exec_arn)


def _stop_execution_response(self: StepFunctionResponse) -> Any:
    _stop_reason.value = (self._get_param("error") or "", self._get_param("cause") or "")
    try:
        return _original_stop_response(self)
    finally:
        _stop_reason.value = None


def _machine_stop_execution(self: StateMachine, execution_arn: str) -> Any:
    execution = next((x for x in self.executions if x.execution_arn == execution_arn), None)
    # A stop right after the start can reach moto before the execution's worker has its
    # environment (moto then fails with a 500): give it a moment, as AWS queues the stop.
    worker = getattr(execution, "exec_worker", None)
    deadline = time.monotonic() + 10
    while worker is not None and getattr(worker, "env", None) is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    reason = getattr(_stop_reason, "value", None)
    if execution is None or reason is None:
        return _original_machine_stop(self, execution_arn)
    from moto.core.utils import utcnow

    execution.stop(stop_date=utcnow(), error=reason[0], cause=reason[1])
    return execution


_original_machine_stop = StateMachine.stop_execution


def install() -> None:
    """Apply the deliveries (idempotent)."""
    Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = _terminated  # type: ignore[method-assign]
    StepFunctionResponse.stop_execution = _stop_execution_response  # type: ignore[method-assign]
    StateMachine.stop_execution = _machine_stop_execution  # type: ignore[method-assign]
