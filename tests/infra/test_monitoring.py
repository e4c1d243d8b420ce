"""Dashboard and alarms (infra/monitoring.py) in the synthesized template.

Three configurations: the default (GPU p4d, weekly schedule), the demo's CPU one (schedule
kept) and a g5.12xlarge torchrun one without a schedule, so the idle-GPU alarm and the
dead-letter alarm are each seen present and absent independently.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.config import ConfigError, gpus_per_instance
from infra.monitoring import (
    HOST_METRICS,
    IDLE_GPU_PERCENT,
    IDLE_GPU_PERIODS,
    KEY_ACTIONS,
    search_expression,
)
from localaws.api_model import request_problems
from tests.infra.conftest import Synth, synthesize
from training import contract
from trainops.demo import DEMO_CONTEXT

EXECUTION_METRICS = (
    "ExecutionsStarted",
    "ExecutionsSucceeded",
    "ExecutionsFailed",
    "ExecutionsAborted",
    "ExecutionsTimedOut",
)


@pytest.fixture(scope="module")
def cpu_synth(tmp_path_factory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("cdk-monitoring-cpu"), DEMO_CONTEXT)


@pytest.fixture(scope="module")
def g5_synth(tmp_path_factory) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("cdk-monitoring-g5"),
        {
            "training.instance_type": "ml.g5.12xlarge",
            "training.backend": "torchrun",
            "training.schedule_cron": "off",
        },
    )


# --- template helpers ---------------------------------------------------------------------------
def _render(value: Any) -> str:
    """A Fn::Join'ed string with each token spelled `${Ref:Id}` / `${Id.Attr}`."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    if "Ref" in value:
        return f"${{Ref:{value['Ref']}}}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    raise AssertionError(f"unexpected token {value}")


def _logical_id(synth: Synth, construct: Any) -> str:
    return synth.stack.resolve(synth.stack.get_logical_id(construct.node.default_child))


def _dashboard(synth: Synth) -> dict[str, Any]:
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    props = dashboard["Properties"]
    assert props["DashboardName"] == f"{synth.stack.stack_name}-training"
    return json.loads(_render(props["DashboardBody"]))


def _widget_metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [m for w in body["widgets"] for m in w["properties"].get("metrics", [])]


def _searches(body: dict[str, Any]) -> set[str]:
    return {m[0]["expression"] for m in _widget_metrics(body) if isinstance(m[0], dict)}


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """AlarmName (without the stack-name prefix) -> properties."""
    prefix = f"{synth.stack.stack_name}-"
    alarms = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        name = alarm["Properties"]["AlarmName"]
        assert name.startswith(prefix)
        alarms[name.removeprefix(prefix)] = alarm["Properties"]
    return alarms


def _topic_ref(synth: Synth) -> dict[str, str]:
    return {"Ref": _logical_id(synth, synth.stack.workflow.topic)}


def _queries(alarm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["Id"]: q for q in alarm["Metrics"]}


# --- dashboard ----------------------------------------------------------------------------------
def test_dashboard_execution_outcomes_of_the_state_machine(default_synth):
    body = _dashboard(default_synth)
    machine = f"${{Ref:{_logical_id(default_synth, default_synth.stack.workflow.state_machine)}}}"
    outcomes = [m for m in _widget_metrics(body) if m[0] == "AWS/States"]
    assert [m[1] for m in outcomes] == list(EXECUTION_METRICS)
    for metric in outcomes:
        assert metric[2:4] == ["StateMachineArn", machine]
        assert metric[4]["stat"] == "Sum"


def test_dashboard_searches_only_this_stacks_jobs(default_synth):
    config = default_synth.stack.config
    searches = _searches(_dashboard(default_synth))
    # spelled out once: schema (quoted namespace, Host), exact metric name, prefix token, period
    assert (
        """SEARCH('{"/aws/sagemaker/TrainingJobs",Host} MetricName="GPUUtilization" """
        f"""Host={config.job_name_prefix}', 'Average', 60)"""
    ) in searches
    hosts = {s for s in searches if ",Host}" in s}
    jobs = {s for s in searches if ",TrainingJobName}" in s}
    assert hosts | jobs == searches
    assert {s.split('MetricName="')[1].split('"')[0] for s in hosts} == set(HOST_METRICS)
    # every metric the jobs' MetricDefinitions publish: the task's (cdk.json) and the runner's
    job_metrics = {s.split('MetricName="')[1].split('"')[0] for s in jobs}
    assert job_metrics == {*config.metrics, *contract.RUNNER_METRICS}
    assert {"val_loss", "epoch", "samples_per_sec"} <= job_metrics
    for search in searches:
        dimension = "Host" if search in hosts else "TrainingJobName"
        assert f"{dimension}={config.job_name_prefix}'" in search


def test_dashboard_shows_dead_letter_depth_only_with_a_schedule(default_synth, g5_synth):
    queue = _logical_id(default_synth, default_synth.stack.schedule.dead_letter_queue)
    depth = [m for m in _widget_metrics(_dashboard(default_synth)) if m[0] == "AWS/SQS"]
    assert [m[:4] for m in depth] == [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"${{{queue}.QueueName}}"]
    ]
    assert [m for m in _widget_metrics(_dashboard(g5_synth)) if m[0] == "AWS/SQS"] == []


def test_search_expression_escapes_exact_match_and_refuses_quotes():
    expression = search_expression('top1(val)"x', "TrainingJobName", "lightning")
    assert 'MetricName="top1\\(val\\)\\"x"' in expression
    with pytest.raises(ConfigError, match="metrics=\"it's\": expected a metric name without '"):
        search_expression("it's", "Host", "lightning")


# --- alarms -------------------------------------------------------------------------------------
def test_failed_executions_alarm(default_synth):
    alarm = _alarms(default_synth)["failed-executions"]
    machine = {"Ref": _logical_id(default_synth, default_synth.stack.workflow.state_machine)}
    queries = _queries(alarm)
    (expression,) = [q for q in queries.values() if q.get("ReturnData", True)]
    stats = {q["Id"]: q["MetricStat"] for q in queries.values() if "MetricStat" in q}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": machine}]
        assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
    assert all(f"FILL({query_id}, 0)" in expression["Expression"] for query_id in stats)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [_topic_ref(default_synth)]
    assert "OKActions" not in alarm


def test_dead_letter_alarm_only_with_a_schedule(default_synth, cpu_synth, g5_synth):
    alarm = _alarms(default_synth)["schedule-dead-letters"]
    queue = _logical_id(default_synth, default_synth.stack.schedule.dead_letter_queue)
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [_topic_ref(default_synth)]
    assert "schedule-dead-letters" in _alarms(cpu_synth)  # the demo keeps cdk.json's schedule
    assert "schedule-dead-letters" not in _alarms(g5_synth)


def _check_idle_gpu_alarm(synth: Synth) -> None:
    config = synth.stack.config
    alarm = _alarms(synth)["idle-gpu"]
    (query,) = alarm["Metrics"]
    assert query["Expression"] == (
        'SELECT MIN(GPUUtilization) FROM SCHEMA("/aws/sagemaker/TrainingJobs", Host)'
    )
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    # GPUUtilization is 0-100 per GPU, summed over the host's GPUs
    assert alarm["Threshold"] == IDLE_GPU_PERCENT * gpus_per_instance(config.instance_type)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == IDLE_GPU_PERIODS
    assert query["Period"] * IDLE_GPU_PERIODS <= 3 * 3600  # Metrics Insights sees 3 hours
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == alarm["OKActions"] == [_topic_ref(synth)]


def test_idle_gpu_alarm_on_gpu_instance_types(default_synth, g5_synth):
    assert gpus_per_instance(default_synth.stack.config.instance_type) == 8
    assert gpus_per_instance(g5_synth.stack.config.instance_type) == 4
    _check_idle_gpu_alarm(default_synth)
    _check_idle_gpu_alarm(g5_synth)
    assert (
        _alarms(default_synth)["idle-gpu"]["Threshold"]
        == 2 * (_alarms(g5_synth)["idle-gpu"]["Threshold"])
    )


def test_no_idle_gpu_alarm_on_cpu_instance_types(cpu_synth):
    assert gpus_per_instance(cpu_synth.stack.config.instance_type) == 0
    assert set(_alarms(cpu_synth)) == {"failed-executions", "schedule-dead-letters"}
    assert not [
        q
        for alarm in _alarms(cpu_synth).values()
        for q in alarm.get("Metrics", [])
        if q.get("Expression", "").startswith("SELECT")
    ]


# --- publishing to the encrypted topic ----------------------------------------------------------
def _alarm_arns(synth: Synth) -> list[str]:
    return [
        "arn:${Ref:AWS::Partition}:cloudwatch:${Ref:AWS::Region}:${Ref:AWS::AccountId}:alarm:"
        + alarm["Properties"]["AlarmName"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
    ]


def _cloudwatch_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in document["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]


@pytest.mark.parametrize("which", ["default", "g5"])
def test_cloudwatch_may_publish_for_these_alarms_only(which, default_synth, g5_synth):
    synth = {"default": default_synth, "g5": g5_synth}[which]
    topic = _topic_ref(synth)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [topic]
    ]
    (key,) = synth.resources("AWS::KMS::Key").values()
    (publish,) = _cloudwatch_statements(policy)
    (encrypt,) = _cloudwatch_statements(key["Properties"]["KeyPolicy"])
    assert (publish["Action"], publish["Resource"]) == ("sns:Publish", topic)
    assert sorted(encrypt["Action"]) == sorted(KEY_ACTIONS)
    for statement in (publish, encrypt):
        assert statement["Effect"] == "Allow"
        condition = statement["Condition"]
        assert condition["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        arns = [_render(arn) for arn in condition["ArnEquals"]["aws:SourceArn"]]
        assert sorted(arns) == sorted(_alarm_arns(synth))


# --- the API would accept them -----------------------------------------------------------------
_PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}


def _concrete(value: Any) -> Any:
    """Template values as a deployment resolves them: pseudo parameters, and an ARN-shaped
    stand-in for each resource reference."""
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_concrete(part) for part in parts)
    if "Ref" in value:
        return _PSEUDO.get(value["Ref"], f"arn:aws:sns:us-east-1:123456789012:{value['Ref']}")
    if "Fn::GetAtt" in value:
        return "-".join(value["Fn::GetAtt"])
    return {k: _concrete(v) for k, v in value.items()}


@pytest.mark.parametrize("which", ["default", "cpu", "g5"])
def test_alarms_and_dashboard_match_the_api_model(which, default_synth, cpu_synth, g5_synth):
    """CloudFormation passes these properties to PutMetricAlarm / PutDashboard as they are."""
    synth = {"default": default_synth, "cpu": cpu_synth, "g5": g5_synth}[which]
    problems = []
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        problems += request_problems("cloudwatch", "PutMetricAlarm", _concrete(alarm["Properties"]))
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    problems += request_problems("cloudwatch", "PutDashboard", _concrete(dashboard["Properties"]))
    assert problems == []


# --- checks on the variants (the default's are in test_stack.py) --------------------------------
@pytest.mark.parametrize("which", ["cpu", "g5"])
def test_variants_nag_and_cfn_lint_clean(which, cpu_synth, g5_synth):
    from cfnlint.api import lint

    synth = {"cpu": cpu_synth, "g5": g5_synth}[which]
    assert synth.findings == [] and synth.error is None
    text = (synth.outdir / f"{synth.stack.stack_name}.template.json").read_text()
    assert [str(m) for m in lint(text, regions=["us-east-1", "eu-west-1", "ap-northeast-1"])] == []
