"""`trainops cost`: what a run can cost before it costs anything, on-demand vs managed spot.

Two figures, from the pinned price table (trainops/pricing/prices.json) and nothing else:

- the upper bound: instance count x $/instance-hour x MaxRuntimeInSeconds. For spot, the same
  bound at the table's spot assumption (an estimate: managed spot has no list price). Waiting for
  spot capacity (MaxWaitTimeInSeconds) is not billed, so it never enters the bound.
- the expected cost: the same product over the last comparable run's duration (the newest
  Completed training job with the same instance type and count), when there is one. SageMaker
  bills BillableTimeInSeconds per instance (less than TrainingTimeInSeconds for spot: that is the
  saving), so that run's own cost is count x price x its billable seconds.

`estimate` and `format_line` are pure; `last_comparable_run` and `cost_line` read SageMaker.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trainops.aws import Aws, stack_outputs
from trainops.cli_args import add_command, add_target_options, aws_of, guarded
from trainops.pricing import PriceError, PriceTable, load
from trainops.run_input import RunDefaults

#: DescribeTrainingJob calls spent looking for the last comparable run, newest job first.
MAX_DESCRIBES = 20
_MAX_LIST_PAGES = 5


class CostInputError(ValueError):
    """A count or runtime that cannot be priced."""


@dataclass(frozen=True)
class ComparableRun:
    """The newest Completed job with the same instance type and count, as SageMaker billed it."""

    job_name: str
    training_s: float
    billable_s: float
    spot: bool = False


@dataclass(frozen=True)
class Estimate:
    """Upper bound and expected cost of one run, on-demand and spot side by side (USD)."""

    instance_type: str
    instance_count: int
    max_runtime_s: float
    spot: bool
    region: str
    price_per_hour: float
    price_quoted: bool
    spot_factor: float
    table_date: str
    upper_on_demand: float
    upper_spot: float
    last_run: ComparableRun | None = None
    expected_on_demand: float | None = None
    expected_spot: float | None = None
    #: True when expected_spot comes from the last run's own billed seconds (a spot run),
    #: False when it is the table's spot assumption applied to its duration.
    expected_spot_observed: bool = False
    last_run_cost: float | None = None
    #: Why there is no last run when the lookup itself failed (e.g. AccessDenied).
    last_run_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["market"] = "spot" if self.spot else "on-demand"
        data["spot_is_estimate"] = True
        return data


def estimate(
    instance_type: str,
    instance_count: int,
    max_runtime_s: float,
    spot: bool,
    region: str,
    table: PriceTable,
    last_run_seconds: ComparableRun | float | None = None,
) -> Estimate:
    """The run's cost from the table. `last_run_seconds`: the last comparable run (its training
    and billable seconds), or just its duration in seconds (billed in full), or None."""
    _positive_int("instance count", instance_count, "--instance-count 2")
    _positive_number("max runtime", max_runtime_s, "--max-runtime-s 86400")
    price = table.price(instance_type, region)
    factor = table.spot_factor
    rate = instance_count * price / 3600  # $ per second of the whole cluster, on-demand
    last = last_run_seconds
    if last is not None and not isinstance(last, ComparableRun):
        _positive_number("last run seconds", last, "a positive duration")
        last = ComparableRun(job_name="", training_s=float(last), billable_s=float(last))
    fields: dict[str, Any] = {}
    if last is not None:
        observed = last.spot and 0 < last.billable_s < last.training_s
        fields = {
            "last_run": last,
            "expected_on_demand": _usd(rate * last.training_s),
            "expected_spot": _usd(
                rate * last.billable_s if observed else rate * factor * last.training_s
            ),
            "expected_spot_observed": observed,
            "last_run_cost": _usd(rate * last.billable_s),
        }
    return Estimate(
        instance_type=instance_type,
        instance_count=instance_count,
        max_runtime_s=max_runtime_s,
        spot=spot,
        region=region,
        price_per_hour=price,
        price_quoted=table.is_quoted(instance_type, region),
        spot_factor=factor,
        table_date=table.date.isoformat(),
        upper_on_demand=_usd(rate * max_runtime_s),
        upper_spot=_usd(rate * factor * max_runtime_s),
        **fields,
    )


def format_line(est: Estimate) -> str:
    """One line for `trainops start`: the bound in the run's own market first."""
    od, sp = f"${est.upper_on_demand:,.2f}", f"${est.upper_spot:,.2f}"
    bound = (
        f"up to {sp} spot (estimate; {od} on-demand)"
        if est.spot
        else f"up to {od} on-demand ({sp} spot, estimate)"
    )
    run = f"{est.instance_count} x {est.instance_type} x {duration(est.max_runtime_s)}"
    if est.last_run is None:
        last = est.last_run_note or "no comparable run yet"
    else:
        last = (
            f"last comparable run: ${est.last_run_cost:,.2f} "
            f"({duration(est.last_run.billable_s)} billed)"
        )
    basis = "" if est.price_quoted else ", derived"
    return f"cost: {bound} for {run}; {last} (prices of {est.table_date}{basis})"


def last_comparable_run(
    aws: Aws, instance_type: str, instance_count: int, max_describes: int = MAX_DESCRIBES
) -> ComparableRun | None:
    """The newest Completed training job on this instance type and count, or None.

    ListTrainingJobs (Completed, newest first) then DescribeTrainingJob for its ResourceConfig,
    at most `max_describes` of them: the stack's job name prefix is not an output, so any
    account job of the same shape counts as comparable.
    """
    sagemaker = aws.client("sagemaker")
    summaries: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "StatusEquals": "Completed",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    for _ in range(_MAX_LIST_PAGES):
        page = sagemaker.list_training_jobs(**kwargs)
        summaries += page.get("TrainingJobSummaries", [])
        if len(summaries) >= max_describes or not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    # Newest first even where the service ignores SortOrder (the emulator does).
    summaries.sort(key=lambda s: s["CreationTime"], reverse=True)
    for summary in summaries[:max_describes]:
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        resources = job.get("ResourceConfig", {})
        if (
            resources.get("InstanceType") != instance_type
            or resources.get("InstanceCount") != instance_count
        ):
            continue
        training = job.get("TrainingTimeInSeconds") or job.get("BillableTimeInSeconds")
        if not training:
            continue
        return ComparableRun(
            job_name=job["TrainingJobName"],
            training_s=float(training),
            billable_s=float(job.get("BillableTimeInSeconds") or training),
            spot=bool(job.get("EnableManagedSpotTraining")),
        )
    return None


def estimate_run(
    aws: Aws,
    defaults: RunDefaults,
    overrides: Mapping[str, Any] | None = None,
    *,
    max_runtime_s: float | None = None,
    table: PriceTable | None = None,
) -> Estimate:
    """The estimate for a run of the deployed stack: its defaults, the run's overrides
    (instance_type, instance_count, spot as in the execution input), its last comparable run."""
    data = dict(overrides or {})
    instance_type = data.get("instance_type", defaults.instance_type)
    count = data.get("instance_count", defaults.instance_count)
    table = table or load()
    table.price(instance_type, aws.region)  # a pricing gap fails before any SageMaker call
    _positive_int("instance count", count, "--instance-count 2")
    note = None
    try:
        last = last_comparable_run(aws, instance_type, count)
    except (ClientError, BotoCoreError) as exc:  # the bound needs no SageMaker call
        last, note = None, f"last run not looked up ({exc})"
    est = estimate(
        instance_type,
        count,
        max_runtime_s if max_runtime_s is not None else defaults.max_runtime_s,
        bool(data.get("spot", defaults.spot)),
        aws.region,
        table,
        last,
    )
    return replace(est, last_run_note=note) if note else est


def cost_line(
    aws: Aws,
    defaults: RunDefaults,
    overrides: Mapping[str, Any] | None = None,
    *,
    table: PriceTable | None = None,
) -> str:
    """`format_line` of `estimate_run`, for `trainops start`. A pricing gap (a type or region
    the table lacks) is returned as the line's reason instead of raised: the table must not
    stop a run that SageMaker would accept."""
    try:
        return format_line(estimate_run(aws, defaults, overrides, table=table))
    except (PriceError, CostInputError) as exc:
        return f"cost: not estimated ({exc})"


def duration(seconds: float) -> str:
    """`24 h`, `1 h 30 min`, `12 min`, `45 s`: the run's scale, not its precision."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


# --- the command ----------------------------------------------------------------------------
def cmd_cost(args: argparse.Namespace) -> int:
    overrides = {
        key: value
        for key, value in (
            ("instance_type", args.instance_type),
            ("instance_count", args.instance_count),
            ("spot", args.spot),
        )
        if value is not None
    }
    if args.instance_count is not None:
        _positive_int("instance count", args.instance_count, "--instance-count 2")
    if args.max_runtime_s is not None:
        _positive_number("max runtime", args.max_runtime_s, "--max-runtime-s 86400")
    table = load()
    aws = aws_of(args)
    if args.instance_type:
        table.price(args.instance_type, aws.region)  # a typo fails before any AWS call
    defaults = RunDefaults.of_stack(stack_outputs(aws, args.stack_name))
    est = estimate_run(aws, defaults, overrides, max_runtime_s=args.max_runtime_s, table=table)
    if args.json:
        print(json.dumps(est.to_json(), sort_keys=True))
    else:
        print(report(est, table))
    return 0


def report(est: Estimate, table: PriceTable) -> str:
    """The command's text output: the table's date and basis, both markets, the last run."""
    basis = "quoted" if est.price_quoted else "derived: see the table's notes"
    pay = f"pay {est.spot_factor:.0%} of on-demand"
    lines = [
        f"{est.instance_count} x {est.instance_type} in {est.region} at "
        f"${est.price_per_hour:,.4f}/instance-hour on-demand "
        f"(prices of {est.table_date}, {basis}; {table.path})",
        f"{'':<26}{'on-demand':>14}{'spot (estimate)':>18}",
        f"{'upper bound':<26}{_cell(est.upper_on_demand):>14}{_cell(est.upper_spot):>18}"
        f"   max runtime {duration(est.max_runtime_s)}",
    ]
    if est.last_run is None:
        why = est.last_run_note or "no comparable run yet"
        lines.append(f"{'expected':<26}{'-':>14}{'-':>18}   {why}")
    else:
        run = est.last_run
        lines.append(
            f"{'expected (last run)':<26}{_cell(est.expected_on_demand):>14}"
            f"{_cell(est.expected_spot):>18}   {run.job_name}: {duration(run.training_s)}, "
            f"{duration(run.billable_s)} billed = ${est.last_run_cost:,.2f}"
        )
    spot_basis = (
        "the last run's billed seconds" if est.expected_spot_observed else f"assumed ({pay})"
    )
    lines.append(
        f"this run: {'spot' if est.spot else 'on-demand'}; spot figures are estimates: "
        f"{spot_basis}; waiting for spot capacity is not billed"
    )
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _usd(value: float) -> float:
    return round(value, 2)


def _positive_int(what: str, value: Any, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CostInputError(f"{what} {value!r}: expected a positive integer, e.g. {example}")


def _positive_number(what: str, value: Any, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise CostInputError(
            f"{what} {value!r}: expected a positive number of seconds, e.g. {example}"
        )


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "cost", "upper bound and expected cost of a run, on-demand vs spot (pinned prices)"
    )
    add_target_options(p)
    p.add_argument("--max-runtime-s", type=float, help="MaxRuntimeInSeconds (default: the stack's)")
    p.set_defaults(handler=guarded(cmd_cost, PriceError, CostInputError))
