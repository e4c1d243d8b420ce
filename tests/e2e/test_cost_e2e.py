"""`trainops cost` against the deployed stack on the embedded AWS.

Defaults come from the stack's RunDefaults output; the last comparable run is a real job the
emulator ran (one short run here), whose BillableTimeInSeconds / TrainingTimeInSeconds the
emulated DescribeTrainingJob reports. Every request the command sends is checked against
botocore's service model.
"""

from __future__ import annotations

import json

import pytest

from trainops import pricing, runs
from trainops.run_input import RunDefaults

from .conftest import E2eStack, run_cli, valid_operations

pytestmark = [pytest.mark.slow]


def _cost(stack: E2eStack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(stack, capsys, "cost", *argv)
    assert code == 0, err
    return code, out


@pytest.mark.timeout(150)
def test_cost_of_the_deployed_stack_before_and_after_a_comparable_run(
    stack: E2eStack,
    operator_calls: list[tuple[str, str, dict]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = pricing.load()
    defaults = RunDefaults.of_stack(stack.outputs)
    price = table.regions[stack.emulator.region][defaults.instance_type]
    hours = defaults.max_runtime_s / 3600

    # A shape no job of this stack has: the bound from the stack's defaults, no last run.
    _, out = _cost(stack, capsys, "--instance-count", "3", "--json")
    got = json.loads(out)
    assert got["instance_type"] == defaults.instance_type and got["instance_count"] == 3
    assert got["max_runtime_s"] == defaults.max_runtime_s and got["spot"] is defaults.spot
    assert got["upper_on_demand"] == pytest.approx(3 * price * hours, abs=0.005)
    assert got["upper_spot"] == pytest.approx(3 * price * table.spot_factor * hours, abs=0.005)
    assert got["last_run"] is None and got["expected_on_demand"] is None
    assert got["table_date"] == table.date.isoformat()

    # One short run at the stack's shape; the emulator reports what SageMaker bills.
    arn = stack.start({"hyperparameters": {"epochs": "1"}})
    assert stack.wait(arn)["status"] == "SUCCEEDED", stack.seen(arn)
    job_name = runs.training_jobs_of(stack.aws, arn)[-1]
    job = stack.describe_job(job_name)
    assert job["TrainingJobStatus"] == "Completed"
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] >= 1

    _, out = _cost(stack, capsys, "--json")
    got = json.loads(out)
    assert got["instance_count"] == defaults.instance_count
    assert got["last_run"] == {
        "job_name": job_name,
        "training_s": job["TrainingTimeInSeconds"],
        "billable_s": job["BillableTimeInSeconds"],
        "spot": job.get("EnableManagedSpotTraining", False),
    }
    rate = defaults.instance_count * price / 3600
    assert got["expected_on_demand"] == pytest.approx(
        rate * job["TrainingTimeInSeconds"], abs=0.005
    )
    assert got["last_run_cost"] == pytest.approx(rate * job["BillableTimeInSeconds"], abs=0.005)

    # The text report says the table's date and names the comparable job.
    _, out = _cost(stack, capsys)
    assert f"prices of {table.date}" in out and job_name in out
    assert "spot (estimate)" in out

    # Only reads, each one valid for the real API.
    sent = valid_operations(operator_calls)
    assert sent == {
        ("cloudformation", "DescribeStacks"),
        ("sagemaker", "ListTrainingJobs"),
        ("sagemaker", "DescribeTrainingJob"),
    }, sorted(sent)
