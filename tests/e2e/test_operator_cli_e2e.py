"""The operator CLI against the deployed stack on the embedded AWS.

`start --watch`, `watch`, `list` and `stop` run in this process through `trainops.cli.main`;
every request they send is captured at botocore's `_make_api_call` and checked against
botocore's service model (enums, patterns, lengths and ranges included), and their output is
parsed back.
"""

from __future__ import annotations

import json

import pytest

from trainops import runs
from trainops.demo import upload_default_dataset

from .conftest import E2eStack, processes_gone, run_cli, valid_operations

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(150)
def test_cli_requests_match_the_api_models_and_output_parses(
    stack: E2eStack,
    operator_calls: list[tuple[str, str, dict]],
    capsys: pytest.CaptureFixture[str],
    tmp_path,
) -> None:
    # start --watch --json: every line is JSON, the last one the final state.
    code, out, _ = run_cli(
        stack,
        capsys,
        "start",
        "--hp",
        "epochs=2",
        "--instance-count",
        "1",
        "--watch",
        "--interval",
        "0.5",
        "--json",
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0, out
    arn = lines[0]["executionArn"]
    final = lines[-1]
    assert final["execution_arn"] == arn and final["status"] == "SUCCEEDED"
    assert final["job_status"] == "Completed" and final["attempt"] == 1
    assert final["metrics"]["val_acc"] > 0.5
    assert final["model_artifacts"].endswith("/output/model.tar.gz")
    statuses = [line.get("secondary_status") for line in lines[1:]]
    assert "Training" in statuses
    (request,) = stack.requests_of(arn)
    assert request["HyperParameters"]["epochs"] == "2"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["Environment"]["TRAINOPS_TRIGGER"] == "operator"
    name = final["name"]

    # watch (plain) on the finished run: the outcome with status and val_acc.
    code, out, _ = run_cli(stack, capsys, "watch", name, "--interval", "0.5")
    assert code == 0
    assert f"execution  {name}: SUCCEEDED" in out
    assert f"val_acc    {final['metrics']['val_acc']:.4f}" in out

    # list, plain and JSON.
    code, out, _ = run_cli(stack, capsys, "list", "--limit", "5")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "STATUS", "SECONDS", "ATTEMPTS", "RESULT"]
    row = next(r for r in rows if r.startswith(name))
    assert row.split()[1] == "SUCCEEDED"
    assert f"val_acc={final['metrics']['val_acc']:.4f}" in row
    code, out, _ = run_cli(stack, capsys, "list", "--limit", "5", "--json")
    listed = json.loads(out)
    assert code == 0 and listed[0]["execution_arn"] == arn
    assert listed[0]["metrics"]["val_acc"] == final["metrics"]["val_acc"]

    # start a long run, then `stop` (the latest run): job Stopped, execution ABORTED.
    code, out, _ = run_cli(
        stack, capsys, "start", "--hp", "epochs=1000", "--instance-count", "1", "--json"
    )
    assert code == 0
    long_arn = json.loads(out)["executionArn"]
    job_name = stack.wait_for_job(long_arn, "Training")
    code, out, _ = run_cli(stack, capsys, "stop", "--json")
    assert code == 0
    assert json.loads(out)["execution_arn"] == long_arn
    assert stack.wait(long_arn, timeout_s=30)["status"] == "ABORTED"
    assert processes_gone(stack.emulator, job_name)
    job = stack.client("sagemaker").describe_training_job(TrainingJobName=job_name)
    assert job["TrainingJobStatus"] in ("Stopping", "Stopped")
    assert runs.snapshot(stack.aws, long_arn).status == "ABORTED"

    # The dataset upload the demo does, through the same kind of client.
    from trainops.aws import Aws

    upload_default_dataset(
        Aws(region=stack.emulator.region, endpoint_url=stack.emulator.endpoint_url),
        f"s3://{stack.outputs.data_bucket}/cli-upload/train/",
        tmp_path,
    )

    # Every request sent, valid for the real API.
    sent = valid_operations(operator_calls)
    assert {
        ("cloudformation", "DescribeStacks"),
        ("stepfunctions", "StartExecution"),
        ("stepfunctions", "DescribeExecution"),
        ("stepfunctions", "GetExecutionHistory"),
        ("stepfunctions", "ListExecutions"),
        ("stepfunctions", "StopExecution"),
        ("sagemaker", "DescribeTrainingJob"),
        ("sagemaker", "StopTrainingJob"),
        ("logs", "DescribeLogStreams"),
        ("logs", "GetLogEvents"),
        ("s3", "PutObject"),
    } <= sent, sorted(sent)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--instance-count", "0"], "instance_count"),
        (["--hp", "lr_scaling=cubic"], "lr_scaling"),
        (["--instance-type", "p4d"], "instance_type"),
        (["--hp", "epochs=0"], "epochs"),
        (["--hp", "sagemaker_program=x.py"], "sagemaker_program"),
        (["--hp", "epochs"], "epochs"),
    ],
)
def test_cli_start_rejects_bad_overrides_before_sending_anything(
    stack: E2eStack,
    operator_calls: list[tuple[str, str, dict]],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    mentions: str,
) -> None:
    before = len(stack.emulator.sagemaker.requests)
    code, out, err = run_cli(stack, capsys, "start", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert mentions in err
    assert operator_calls == []  # nothing sent at all, StartExecution included
    assert len(stack.emulator.sagemaker.requests) == before


@pytest.mark.timeout(60)
def test_cli_start_accepts_the_instance_type_the_deployed_stack_runs_on(
    stack: E2eStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        stack, capsys, "start", "--instance-type", "ml.m5.xlarge", "--hp", "epochs=1", "--json"
    )
    if code == 0:
        arn = json.loads(out)["executionArn"]
        runs.stop_run(stack.aws, arn)
        stack.wait(arn, timeout_s=30)
    assert code == 0, err
