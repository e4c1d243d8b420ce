"""The notebook path sends the state machine's request: captured and compared field by field.

For the same input, the CreateTrainingJob the deployed state machine sends and the ones SDK 3.x
(`Stack.model_trainer`) and SDK 2.x (`Stack.pytorch_estimator`, in its own venv) send are
normalized (run ids, channel and tag order, hyperparameters as the toolkit decodes them) and
diffed. The differences left are listed below, each with its reason; any other one fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localaws.deploy import deploy
from tests import timing
from tests.e2e import sdk_requests as cap
from tests.e2e.conftest import E2E_CONTEXT, STACK_NAME, E2eStack
from trainops.aws import stack_outputs
from trainops.demo import synth

pytestmark = [pytest.mark.slow, pytest.mark.timeout(timing.bound(600))]

SMDDP_STACK = "E2eSmddp"
#: The production shape: SMDDP on p4d, FastFile data, spot.
SMDDP_CONTEXT = {
    **E2E_CONTEXT,
    "training.stack_name": SMDDP_STACK,
    "training.backend": "smddp",
    "training.instance_type": "ml.p4d.24xlarge",
    "training.input_mode": "FastFile",
}
OVERRIDES = {
    "instance_count": 2,
    # "3" and "0.002" are JSON literals, "16-mixed" is not: both SDK 2.x encodings are covered.
    "hyperparameters": {"epochs": "3", "lr": "0.002", "precision": "16-mixed"},
}
#: The only differences from the state machine's request, and why each is right.
EXPECTED = {
    # An SDK job belongs to no execution; the trigger says who started it.
    ("Environment", "TRAINOPS_EXECUTION_ARN"): "state machine only",
}
#: SDK 2.x leaves out what equals the API's default and says "profiler off" explicitly; the job
#: SageMaker runs is the same.
SDK2_DEFAULTS = {
    # false is the API's default for both flags; SDK 2.x sends them only when true.
    ("EnableInterContainerTrafficEncryption",): (False, "<absent>"),
    ("EnableManagedSpotTraining",): (False, "<absent>"),
    # GZIP is the API's default compression.
    ("OutputDataConfig", "CompressionType"): ("GZIP", "<absent>"),
    # disable_profiler=True is sent as a config; no profiler runs either way.
    ("ProfilerConfig",): ("<absent>", {"DisableProfiler": True}),
    # SDK 2.x adds the code channel itself, with no channel InputMode, so it inherits the job's:
    # File here (the same); with FastFile the bundle is mounted instead of copied, and the
    # toolkit opens the tarball the same way.
    ("InputDataConfig", "code", "InputMode"): ("File", "<absent>"),
}
SDK2_SPOT = {k: v for k, v in SDK2_DEFAULTS.items() if k != ("EnableManagedSpotTraining",)}


@pytest.fixture(scope="module")
def smddp_arn(deployed: E2eStack) -> str:
    """A second stack on the same emulator: the smddp backend's state machine."""
    assembly = synth(deployed.work / "cdk.out.smddp", SMDDP_CONTEXT, SMDDP_STACK)
    deploy(deployed.emulator, assembly, SMDDP_STACK)
    return stack_outputs(deployed.aws, SMDDP_STACK).state_machine_arn


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """trainops.sdk points this process at the emulator (AWS_ENDPOINT_URL): undone after."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "true")
    yield


def _compare(stack: E2eStack, arn: str, sdk_request: dict, tmp: Path) -> dict:
    sm_request = cap.from_state_machine(stack, arn, {"trigger": "sdk", **OVERRIDES})
    a = cap.normalized(sm_request, cap.run_id_of(sm_request), tmp)
    b = cap.normalized(sdk_request, cap.run_id_of(sdk_request), tmp)
    return cap.differences(a, b)


def _expected_only(diff: dict) -> dict:
    assert {path for path in EXPECTED} <= set(diff), f"expected differences missing: {diff}"
    for path in EXPECTED:
        assert diff[path][1] == "<absent>", diff[path]
    return {path: values for path, values in diff.items() if path not in EXPECTED}


@pytest.mark.usefixtures("sdk_env")
def test_sdk3_model_trainer_sends_the_state_machines_request(
    stack: E2eStack, tmp_path: Path
) -> None:
    sdk_request = cap.from_sdk3(stack, STACK_NAME, OVERRIDES)
    assert "ContainerEntrypoint" not in sdk_request["AlgorithmSpecification"]
    rest = _expected_only(_compare(stack, stack.state_machine_arn, sdk_request, tmp_path))
    assert rest == {}


@pytest.mark.usefixtures("sdk_env")
def test_stack_request_is_the_state_machines_request(stack: E2eStack, tmp_path: Path) -> None:
    from trainops.sdk import Stack

    planned = Stack(STACK_NAME, endpoint_url=stack.emulator.endpoint_url).request(**OVERRIDES)
    rest = _expected_only(_compare(stack, stack.state_machine_arn, planned, tmp_path))
    assert rest == {}


@pytest.mark.usefixtures("sdk_env")
def test_sdk3_on_the_smddp_stack_sends_the_state_machines_request(
    stack: E2eStack, smddp_arn: str, tmp_path: Path
) -> None:
    overrides = {**OVERRIDES, "spot": True}
    sdk_request = cap.from_sdk3(stack, SMDDP_STACK, overrides)
    assert sdk_request["HyperParameters"]["sagemaker_distributed_dataparallel_enabled"] == "true"
    assert "MaxWaitTimeInSeconds" in sdk_request["StoppingCondition"]
    sm_request = cap.from_state_machine(stack, smddp_arn, {"trigger": "sdk", **overrides})
    diff = cap.differences(
        cap.normalized(sm_request, cap.run_id_of(sm_request), tmp_path),
        cap.normalized(sdk_request, cap.run_id_of(sdk_request), tmp_path),
    )
    assert _expected_only(diff) == {}


needs_sdk2 = pytest.mark.skipif(
    not cap.SDK2_PYTHON.exists(), reason="SDK 2.x venv missing: `make .venv-sdk2` (make test does)"
)


@needs_sdk2
def test_sdk2_estimator_sends_the_state_machines_request(stack: E2eStack, tmp_path: Path) -> None:
    sdk_request = cap.from_sdk2(stack, STACK_NAME, OVERRIDES)
    # Wire values: JSON literals as the state machine sends them, other strings quoted.
    assert sdk_request["HyperParameters"]["epochs"] == "3"
    assert sdk_request["HyperParameters"]["precision"] == '"16-mixed"'
    rest = _expected_only(_compare(stack, stack.state_machine_arn, sdk_request, tmp_path))
    assert rest == SDK2_DEFAULTS


@needs_sdk2
def test_sdk2_on_the_smddp_stack_sends_the_state_machines_request(
    stack: E2eStack, smddp_arn: str, tmp_path: Path
) -> None:
    overrides = {**OVERRIDES, "spot": True}
    sdk_request = cap.from_sdk2(stack, SMDDP_STACK, overrides)
    sm_request = cap.from_state_machine(stack, smddp_arn, {"trigger": "sdk", **overrides})
    diff = cap.differences(
        cap.normalized(sm_request, cap.run_id_of(sm_request), tmp_path),
        cap.normalized(sdk_request, cap.run_id_of(sdk_request), tmp_path),
    )
    assert _expected_only(diff) == SDK2_SPOT
