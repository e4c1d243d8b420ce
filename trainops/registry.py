"""`trainops models | approve`: the stack's model registry (one model package group).

Each successful run registers a version (the state machine's RegisterModel state): its image,
model data, the run's hyperparameters and job (CustomerMetadataProperties) and final metrics
(tags `metric:<name>`). Versions are addressed by number, as SageMaker numbers them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field

from core import outputs as output_names
from trainops.aws import Aws, StackNotFound, stack_outputs
from trainops.cli_args import add_command, aws_of, guarded

METRIC_TAG = "metric:"
STATUSES = {"approve": "Approved", "reject": "Rejected"}


class RegistryError(LookupError):
    """A version or group that does not exist: one line with the fix (exit 1)."""


@dataclass
class ModelVersion:
    version: int
    arn: str
    approval: str
    status: str
    created: str
    training_job: str | None = None
    model_data: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def group_of(aws: Aws, stack_name: str) -> str:
    values = stack_outputs(aws, stack_name).values
    group = values.get(output_names.MODEL_PACKAGE_GROUP)
    if not group:
        raise StackNotFound(
            f"stack {stack_name} has no model registry (output "
            f"{output_names.MODEL_PACKAGE_GROUP}): deploy it with training.model_registry=true"
        )
    return group


def list_versions(aws: Aws, group: str, limit: int = 20) -> list[ModelVersion]:
    """Newest first, with metrics from the tags."""
    sagemaker = aws.client("sagemaker")
    summaries = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=min(limit, 100),
    )["ModelPackageSummaryList"]
    return [describe(aws, s["ModelPackageArn"]) for s in summaries[:limit]]


def describe(aws: Aws, arn: str) -> ModelVersion:
    sagemaker = aws.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    tags = sagemaker.list_tags(ResourceArn=arn).get("Tags", [])
    metrics = {}
    for tag in tags:
        if tag["Key"].startswith(METRIC_TAG):
            try:
                metrics[tag["Key"][len(METRIC_TAG) :]] = float(tag["Value"])
            except ValueError:
                continue
    containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
    return ModelVersion(
        version=int(package.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
        arn=arn,
        approval=package.get("ModelApprovalStatus", "?"),
        status=package.get("ModelPackageStatus", "?"),
        created=str(package.get("CreationTime", "")),
        training_job=package.get("CustomerMetadataProperties", {}).get("trainops:training-job"),
        model_data=containers[0].get("ModelDataUrl") if containers else None,
        metrics=metrics,
    )


def find_version(aws: Aws, group: str, version: int) -> ModelVersion:
    versions = list_versions(aws, group, limit=100)
    for found in versions:
        if found.version == version:
            return found
    known = sorted(v.version for v in versions)
    have = f"versions are {known[0]}-{known[-1]}" if known else "it has no versions yet"
    raise RegistryError(
        f"version {version} does not exist in model package group {group} ({have}): "
        "see `trainops models`"
    )


def set_approval(aws: Aws, group: str, version: int, status: str, description: str) -> ModelVersion:
    found = find_version(aws, group, version)
    aws.client("sagemaker").update_model_package(
        ModelPackageArn=found.arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description,
    )
    return describe(aws, found.arn)


# --- commands ----------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    aws = aws_of(args)
    versions = list_versions(aws, group_of(aws, args.stack_name), limit=args.limit)
    if args.json:
        print(json.dumps([asdict(v) for v in versions], sort_keys=True))
        return 0
    print(f"{'VERSION':>7}  {'APPROVAL':<22} {'CREATED':<26} METRICS")
    for v in versions:
        metrics = " ".join(f"{k}={v.metrics[k]:.4g}" for k in sorted(v.metrics))
        print(f"{v.version:>7}  {v.approval:<22} {v.created[:26]:<26} {metrics}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    aws = aws_of(args)
    status = STATUSES["reject" if args.reject else "approve"]
    found = set_approval(aws, group_of(aws, args.stack_name), args.version, status, args.reason)
    print(
        json.dumps(asdict(found), sort_keys=True)
        if args.json
        else f"version {found.version}: {found.approval}"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "models", "registered model versions, newest first, with metrics")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=guarded(cmd_models))

    p = add_command(sub, "approve", "approve (or --reject) a registered model version")
    p.add_argument("version", type=_version, help="the version number (`trainops models`)")
    p.add_argument("--reject", action="store_true", help="reject it instead")
    p.add_argument("--reason", default="reviewed with trainops", help="ApprovalDescription")
    p.set_defaults(handler=guarded(cmd_approve))


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a version number like 3 (see `trainops models`)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: versions start at 1")
    return value
