"""Capture CreateTrainingJob requests from the state machine and from each SDK, and diff them.

Every capture injects a failure first, so the emulated job fails at once (nothing trains, no
retry: the failure is not a capacity one); what matters is the request SageMaker received.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests import timing
from trainops.demo import REPO
from trainops.runs import execution_name

CAPTURE_FAILURE = "AlgorithmError: request captured by the test; nothing trains"
SDK2_PYTHON = REPO / ".venv-sdk2" / "bin" / "python"
SDK2_SUBMIT = Path(__file__).with_name("sdk2_submit.py")


def captured(stack: Any, match: Any, what: str) -> dict[str, Any]:
    """The first request the emulated SageMaker received that `match` accepts."""

    def found() -> dict[str, Any] | None:
        return next((r for r in list(stack.emulator.sagemaker.requests) if match(r)), None)

    return timing.wait_until(found, 60, what)


def from_state_machine(stack: Any, state_machine_arn: str, run_input: dict) -> dict[str, Any]:
    stack.emulator.sagemaker.injected_failures.append(CAPTURE_FAILURE)
    arn = stack.client("stepfunctions").start_execution(
        stateMachineArn=state_machine_arn,
        name=execution_name("sdk-parity"),
        input=json.dumps(run_input),
    )["executionArn"]
    request = captured(
        stack,
        lambda r: r.get("Environment", {}).get("TRAINOPS_EXECUTION_ARN") == arn,
        f"the request of {arn}",
    )
    assert stack.wait(arn)["status"] == "FAILED"
    return request


def from_sdk3(stack: Any, stack_name: str, overrides: dict) -> dict[str, Any]:
    from trainops.sdk import Stack

    sdk_stack = Stack(stack_name, endpoint_url=stack.emulator.endpoint_url)
    trainer = sdk_stack.model_trainer(**overrides)
    stack.emulator.sagemaker.injected_failures.append(CAPTURE_FAILURE)
    trainer.train(input_data_config=sdk_stack.inputs(), wait=False, logs=False)
    name = trainer.job_name
    return captured(stack, lambda r: r["TrainingJobName"] == name, f"SDK 3.x job {name}")


def from_sdk2(stack: Any, stack_name: str, overrides: dict) -> dict[str, Any]:
    """Through SDK 2.x in its own venv (`make .venv-sdk2`), as a notebook there would."""
    stack.emulator.sagemaker.injected_failures.append(CAPTURE_FAILURE)
    done = subprocess.run(
        [str(SDK2_PYTHON), str(SDK2_SUBMIT), stack_name, json.dumps(overrides)],
        env=sdk2_env(stack.emulator.endpoint_url),
        capture_output=True,
        text=True,
        timeout=timing.bound(180),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    name = done.stdout.strip().splitlines()[-1]
    return captured(stack, lambda r: r["TrainingJobName"] == name, f"SDK 2.x job {name}")


def sdk2_env(endpoint_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env.update(
        PYTHONPATH=str(REPO),
        TRAINOPS_ENDPOINT_URL=endpoint_url,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def toolkit_decoded(hyperparameters: dict[str, str], tmp: Path) -> dict[str, Any]:
    """What the sagemaker-training toolkit hands the script: its own json-decode of each value."""
    from sagemaker_training import environment

    path = tmp / "hyperparameters.json"
    path.write_text(json.dumps(hyperparameters))
    original = environment.hyperparameters_file_dir
    environment.hyperparameters_file_dir = str(path)
    try:
        return environment.read_hyperparameters()
    finally:
        environment.hyperparameters_file_dir = original


def normalized(request: dict[str, Any], run_id: str, tmp: Path) -> dict[str, Any]:
    """Per-run ids as <run-id>; channels and tags keyed by name (their order carries no
    meaning); hyperparameters as the script receives them."""
    text = json.dumps(request).replace(run_id, "<run-id>")
    out = json.loads(text)
    out["InputDataConfig"] = {c["ChannelName"]: c for c in out["InputDataConfig"]}
    out["Tags"] = {t["Key"]: t["Value"] for t in out["Tags"]}
    out["HyperParameters"] = toolkit_decoded(out["HyperParameters"], tmp)
    return out


def run_id_of(request: dict[str, Any]) -> str:
    return next(t["Value"] for t in request["Tags"] if t["Key"] == "trainops:run-id")


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], tuple]:
    """Every leaf where a and b differ: path -> (a's value, b's value); `<absent>` if missing."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[tuple[str, ...], tuple] = {}
        for key in sorted(set(a) | set(b)):
            out.update(
                differences(a.get(key, "<absent>"), b.get(key, "<absent>"), (*path, str(key)))
            )
        return out
    return {} if a == b else {path: (a, b)}
