"""`trainops cost`: the pinned price table's shape, the cost math against the table's own figures,
the one-line errors, the last-comparable-run lookup and the command's JSON output.

AWS calls go through real boto3 clients with botocore's Stubber, which checks every request
and canned response against the service model; nothing leaves the process.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from trainops import cli, cli_args, cost, pricing
from trainops.aws import Aws
from trainops.run_input import RunDefaults

TABLE = pricing.load()
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1")
SUPPORTED = (
    "ml.p4d.24xlarge",
    "ml.p4de.24xlarge",
    "ml.p5.48xlarge",
    "ml.p5en.48xlarge",
    "ml.p3dn.24xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.12xlarge",
    "ml.g5.48xlarge",
    "ml.g6.xlarge",
    "ml.g6.12xlarge",
    "ml.g6.48xlarge",
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.m5.2xlarge",
    "ml.m5.4xlarge",
    "ml.c5.xlarge",
    "ml.c5.2xlarge",
    "ml.c5.4xlarge",
)
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)


# --- the table -------------------------------------------------------------------------------
def test_price_table_is_dated_sourced_and_every_price_positive() -> None:
    raw = json.loads(pricing.PRICES_JSON.read_text())
    assert dt.date.fromisoformat(raw["date"]) == TABLE.date
    assert raw["currency"] == "USD"
    for words in ("AmazonSageMaker", '"ML Instance"', "Training", "hand-pinned"):
        assert words in raw["source"]
    assert 0 <= raw["spot_discount_assumed"] < 1
    assert "estimate" in raw["spot_note"] and "assume" in raw["spot_note"].lower()
    assert set(REGIONS) <= set(raw["regions"])
    for region, prices in raw["regions"].items():
        assert prices, region
        for instance_type, price in prices.items():
            assert instance_type.startswith("ml.") and isinstance(price, (int, float)), price
            assert price > 0, (region, instance_type)
    # Every supported type is priced somewhere, the default region prices all of them, and
    # what the table calls quoted is in it.
    assert set(SUPPORTED) <= set(raw["regions"]["us-east-1"])
    for region, types in raw["quoted"].items():
        assert set(types) <= set(raw["regions"][region])


def test_a_region_priced_above_us_east_1_keeps_each_family_ratio() -> None:
    """Derived regions scale a whole family by one EC2 ratio: a typo in one entry shows up."""
    base = TABLE.regions["us-east-1"]
    for region in REGIONS[1:]:
        ratios: dict[str, set[float]] = {}
        for instance_type, price in TABLE.regions[region].items():
            family = instance_type.split(".")[1]
            ratios.setdefault(family, set()).add(round(price / base[instance_type], 2))
        assert all(len(r) == 1 for r in ratios.values()), (region, ratios)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"date": "1 Dec 2026"},
            "t.json: \"date\" '1 Dec 2026' is not YYYY-MM-DD (the snapshot's date)",
        ),
        ({"currency": "EUR"}, 't.json: "currency" \'EUR\': expected "USD"'),
        (
            {"spot_discount_assumed": 1.2},
            't.json: "spot_discount_assumed" 1.2: expected a fraction in [0, 1), '
            "e.g. 0.7 for pay 30%",
        ),
        (
            {"regions": {"us-east-1": {}}},
            "t.json: region 'us-east-1' has no prices: remove it or fill it",
        ),
        (
            {"regions": {"us-east-1": {"ml.m5.xlarge": 0}}},
            "t.json: us-east-1 ml.m5.xlarge: 0: expected an ml.* type with a positive "
            "$/instance-hour",
        ),
    ],
)
def test_a_malformed_table_fails_with_the_field_to_fix(change: dict, message: str) -> None:
    raw = {**json.loads(pricing.PRICES_JSON.read_text()), **change}
    with pytest.raises(pricing.PriceError) as failed:
        pricing.parse(raw, "t.json")
    assert str(failed.value) == message


# --- the math --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("instance_type", "count", "runtime_s", "region"),
    [
        ("ml.p4d.24xlarge", 2, 86400, "us-east-1"),
        ("ml.g5.12xlarge", 4, 5400, "eu-central-1"),
        ("ml.m5.xlarge", 1, 600, "ap-northeast-1"),
    ],
)
def test_upper_bound_is_count_times_price_times_max_runtime(
    instance_type: str, count: int, runtime_s: int, region: str
) -> None:
    price = TABLE.regions[region][instance_type]
    hours = runtime_s / 3600
    for spot in (False, True):
        est = cost.estimate(instance_type, count, runtime_s, spot, region, TABLE)
        assert est.price_per_hour == price
        assert est.upper_on_demand == pytest.approx(count * price * hours, abs=0.005)
        # Spot: the same bound at the table's assumption (MaxWait waiting is not billed).
        assert est.upper_spot == pytest.approx(
            count * price * (1 - TABLE.spot_discount_assumed) * hours, abs=0.005
        )
        assert est.spot is spot and est.last_run is None and est.expected_on_demand is None
        assert est.table_date == TABLE.date.isoformat()


def test_expected_cost_follows_the_last_comparable_run() -> None:
    price = TABLE.regions["us-east-1"]["ml.p4d.24xlarge"]
    factor = 1 - TABLE.spot_discount_assumed

    # On-demand last run: billed for every second it trained.
    est = cost.estimate("ml.p4d.24xlarge", 2, 86400, False, "us-east-1", TABLE, 5400)
    assert est.expected_on_demand == pytest.approx(2 * price * 1.5, abs=0.005)
    assert est.expected_spot == pytest.approx(2 * price * 1.5 * factor, abs=0.005)
    assert est.last_run_cost == est.expected_on_demand
    assert not est.expected_spot_observed

    # Spot last run: billed seconds < training seconds is the observed saving.
    last = cost.ComparableRun("job-7", training_s=7200, billable_s=1800, spot=True)
    est = cost.estimate("ml.p4d.24xlarge", 2, 86400, True, "us-east-1", TABLE, last)
    assert est.expected_on_demand == pytest.approx(2 * price * 2, abs=0.005)
    assert est.expected_spot == pytest.approx(2 * price * 0.5, abs=0.005)
    assert est.last_run_cost == est.expected_spot and est.expected_spot_observed


def test_cost_line_is_one_line_with_the_table_date() -> None:
    price = TABLE.regions["us-east-1"]["ml.p4d.24xlarge"]
    od, sp = 2 * price * 24, 2 * price * 24 * (1 - TABLE.spot_discount_assumed)
    est = cost.estimate("ml.p4d.24xlarge", 2, 86400, False, "us-east-1", TABLE)
    assert cost.format_line(est) == (
        f"cost: up to ${od:,.2f} on-demand (${sp:,.2f} spot, estimate) for "
        f"2 x ml.p4d.24xlarge x 24 h; no comparable run yet (prices of {TABLE.date})"
    )
    last = cost.ComparableRun("job-7", training_s=3600, billable_s=3600)
    spot = cost.estimate("ml.p4d.24xlarge", 2, 86400, True, "eu-west-1", TABLE, last)
    line = cost.format_line(spot)
    assert "\n" not in line
    assert line.startswith(f"cost: up to ${spot.upper_spot:,.2f} spot (estimate; ")
    assert f"last comparable run: ${spot.last_run_cost:,.2f} (1 h billed)" in line
    assert line.endswith(f"(prices of {TABLE.date}, derived)")  # eu-west-1 is not quoted


# --- bad input -------------------------------------------------------------------------------
def test_unknown_instance_type_names_the_close_matches_and_the_table() -> None:
    with pytest.raises(pricing.PriceError) as failed:
        cost.estimate("ml.p4d.24xlarg", 2, 3600, False, "us-east-1", TABLE)
    assert str(failed.value) == (
        "unknown instance type 'ml.p4d.24xlarg': trainops/pricing/prices.json has no price for "
        "it (close: ml.p4d.24xlarge, ml.p4de.24xlarge, ml.p3dn.24xlarge); pass one of those "
        "with --instance-type, or add its $/hour to the table"
    )


def test_a_region_missing_from_the_table_names_its_regions_date_and_how_to_add_one() -> None:
    with pytest.raises(pricing.PriceError) as failed:
        cost.estimate("ml.m5.xlarge", 1, 3600, False, "sa-east-1", TABLE)
    regions = ", ".join(sorted(TABLE.regions))
    assert str(failed.value) == (
        f"region 'sa-east-1' is not in trainops/pricing/prices.json (prices of {TABLE.date}; "
        f'regions: {regions}): add a "sa-east-1" object under "regions" with its SageMaker '
        "Training on-demand $/instance-hour (Price List: AmazonSageMaker, ML Instance, "
        "component Training), or pass --region"
    )


def test_a_type_the_region_lacks_names_where_it_is_priced() -> None:
    with pytest.raises(pricing.PriceError) as failed:
        cost.estimate("ml.p5.48xlarge", 1, 3600, False, "eu-west-1", TABLE)
    where = ", ".join(sorted(r for r, p in TABLE.regions.items() if "ml.p5.48xlarge" in p))
    assert str(failed.value) == (
        f"ml.p5.48xlarge has no price for eu-west-1 in trainops/pricing/prices.json (prices of "
        f"{TABLE.date}; priced in {where}): pick another region or instance type, or add its "
        "eu-west-1 price to the table"
    )


@pytest.mark.parametrize(
    ("count", "runtime_s", "message"),
    [
        (0, 3600, "instance count 0: expected a positive integer, e.g. --instance-count 2"),
        (-2, 3600, "instance count -2: expected a positive integer, e.g. --instance-count 2"),
        (
            1,
            0,
            "max runtime 0: expected a positive number of seconds, e.g. --max-runtime-s 86400",
        ),
    ],
)
def test_non_positive_count_or_runtime_is_one_line(count: int, runtime_s: int, message: str):
    with pytest.raises(cost.CostInputError) as failed:
        cost.estimate("ml.m5.xlarge", count, runtime_s, False, "us-east-1", TABLE)
    assert str(failed.value) == message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--instance-type", "ml.g5.12xlarg"],
            "error: unknown instance type 'ml.g5.12xlarg': trainops/pricing/prices.json",
        ),
        (["--instance-count", "0"], "error: instance count 0: expected a positive integer"),
        (["--max-runtime-s", "-1"], "error: max runtime -1.0: expected a positive number"),
        (
            ["--region", "sa-east-1", "--instance-type", "ml.m5.xlarge"],
            "error: region 'sa-east-1' is not in trainops/pricing/prices.json",
        ),
    ],
)
def test_cli_bad_input_fails_in_one_line_before_any_aws_call(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    import botocore.client

    def no_call(self, operation_name, api_params):  # pragma: no cover - the assertion
        raise AssertionError(f"sent {operation_name}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", no_call)
    code = cli.main(["cost", "--endpoint-url", "http://127.0.0.1:9", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1, err


# --- the last comparable run and the command -------------------------------------------------
def _job(name: str, instance_type: str, count: int, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/{name}/output/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": NOW,
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": count,
            "VolumeSizeInGB": 50,
        },
        **extra,
    }


def _summary(name: str, minutes_ago: int) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "CreationTime": NOW - dt.timedelta(minutes=minutes_ago),
        "TrainingJobStatus": "Completed",
    }


def _stubbed_aws(*services: str) -> tuple[Aws, dict[str, Stubber]]:
    aws = Aws(region="us-east-1")
    stubs = {}
    for service in services:
        client = boto3.client(service, region_name="us-east-1")
        aws._clients[service] = client
        stubs[service] = Stubber(client)
    return aws, stubs


_LIST = {
    "StatusEquals": "Completed",
    "SortBy": "CreationTime",
    "SortOrder": "Descending",
    "MaxResults": 100,
}


def test_last_comparable_run_is_the_newest_completed_job_of_the_same_shape() -> None:
    aws, stubs = _stubbed_aws("sagemaker")
    sm = stubs["sagemaker"]
    # Listed oldest first (as the emulator does): the lookup orders them newest first itself.
    sm.add_response(
        "list_training_jobs",
        {
            "TrainingJobSummaries": [
                _summary("old-same", 90),
                _summary("newer-other-count", 10),
                _summary("newest-other-type", 5),
                _summary("mid-same", 30),
            ]
        },
        _LIST,
    )
    for name, job in [
        ("newest-other-type", _job("newest-other-type", "ml.g5.xlarge", 2)),
        ("newer-other-count", _job("newer-other-count", "ml.p4d.24xlarge", 4)),
        (
            "mid-same",
            _job(
                "mid-same",
                "ml.p4d.24xlarge",
                2,
                TrainingTimeInSeconds=5000,
                BillableTimeInSeconds=1500,
                EnableManagedSpotTraining=True,
            ),
        ),
    ]:
        sm.add_response("describe_training_job", job, {"TrainingJobName": name})
    with sm:
        found = cost.last_comparable_run(aws, "ml.p4d.24xlarge", 2)
        sm.assert_no_pending_responses()
    assert found == cost.ComparableRun("mid-same", 5000.0, 1500.0, spot=True)


def test_last_comparable_run_spends_at_most_the_describe_bound() -> None:
    aws, stubs = _stubbed_aws("sagemaker")
    sm = stubs["sagemaker"]
    names = [f"job-{i}" for i in range(cost.MAX_DESCRIBES + 5)]
    sm.add_response(
        "list_training_jobs",
        {"TrainingJobSummaries": [_summary(n, i) for i, n in enumerate(names)]},
        _LIST,
    )
    for name in names[: cost.MAX_DESCRIBES]:  # newest first; none has the asked-for shape
        sm.add_response(
            "describe_training_job", _job(name, "ml.m5.xlarge", 1), {"TrainingJobName": name}
        )
    with sm:
        assert cost.last_comparable_run(aws, "ml.m5.xlarge", 2) is None
        sm.assert_no_pending_responses()


def test_cost_line_survives_a_failed_lookup_and_a_pricing_gap() -> None:
    defaults = _defaults("ml.p4d.24xlarge", 2)
    aws, stubs = _stubbed_aws("sagemaker")
    stubs["sagemaker"].add_client_error("list_training_jobs", "AccessDeniedException", "denied")
    with stubs["sagemaker"]:
        line = cost.cost_line(aws, defaults, {"spot": True})
    assert line.startswith("cost: up to $") and " spot (estimate; " in line
    assert "; last run not looked up (An error occurred (AccessDeniedException)" in line

    gap = cost.cost_line(Aws(region="sa-east-1"), defaults)
    assert gap.startswith("cost: not estimated (region 'sa-east-1' is not in ")


def _defaults(instance_type: str, count: int) -> RunDefaults:
    return RunDefaults(
        backend="torchrun",
        instance_type=instance_type,
        instance_count=count,
        spot=False,
        max_runtime_s=86400,
        max_wait_s=0,
        hyperparameters={},
    )


def test_cli_json_uses_the_stack_defaults_and_the_last_run(
    monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = _defaults("ml.g5.12xlarge", 2)
    aws, stubs = _stubbed_aws("cloudformation", "sagemaker")
    stubs["cloudformation"].add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "S",
                    "CreationTime": NOW,
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [
                        {
                            "OutputKey": "RunDefaults",
                            "OutputValue": json.dumps(asdict(defaults)),
                        }
                    ],
                }
            ]
        },
        {"StackName": "S"},
    )
    stubs["sagemaker"].add_response(
        "list_training_jobs", {"TrainingJobSummaries": [_summary("j1", 3)]}, _LIST
    )
    stubs["sagemaker"].add_response(
        "describe_training_job",
        _job("j1", "ml.g5.12xlarge", 2, TrainingTimeInSeconds=1800, BillableTimeInSeconds=1800),
        {"TrainingJobName": ANY},
    )
    monkeypatch.setattr(cli_args, "Aws", lambda region, endpoint_url, profile: aws)
    with stubs["cloudformation"], stubs["sagemaker"]:
        code = cli.main(["cost", "--stack-name", "S", "--max-runtime-s", "7200", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = json.loads(out)
    price = TABLE.regions["us-east-1"]["ml.g5.12xlarge"]
    assert got["instance_type"] == "ml.g5.12xlarge" and got["instance_count"] == 2
    assert got["market"] == "on-demand" and got["spot_is_estimate"] is True
    assert got["table_date"] == TABLE.date.isoformat() and got["price_per_hour"] == price
    assert got["upper_on_demand"] == pytest.approx(2 * price * 2, abs=0.005)
    assert got["last_run"]["job_name"] == "j1"
    assert got["expected_on_demand"] == pytest.approx(2 * price * 0.5, abs=0.005)
    assert got["price_quoted"] is True  # a us-east-1 figure copied from a published list
