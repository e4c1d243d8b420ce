"""Fixes for moto 5.2.5's CloudFormation where it lacks or misreads what the template uses.

Each patch is one documented gap, nothing more:
- `Custom::AWS` (CDK's AwsCustomResource: one SDK call at deploy time) needs a Lambda run in
  Docker under moto; here the call it describes is made against the emulator itself, and the
  flattened response becomes the resource's attributes, as the real handler does.
- AWS::KMS::Key `Tags` are `{Key, Value}` in CloudFormation; moto hands them to its KMS API
  code, which expects the API's `{TagKey, TagValue}` and fails with KeyError.
- AWS::SageMaker::ModelPackageGroup is not a CloudFormation type moto knows (it skips it):
  here it creates the group through moto's SageMaker backend, as CloudFormation would.
- Security group egress: moto ignores a group's inline SecurityGroupEgress (so EC2's default
  allow-all egress stays, which CloudFormation removes) and skips AWS::EC2::SecurityGroupEgress;
  here the inline rules replace the default and each egress resource is authorized, so the
  emulated group has the rules the template gives it on AWS.
- A bucket's NotificationConfiguration.EventBridgeConfiguration is ignored (moto applies it only
  through the S3 API): applied here, so the bucket sends its events to EventBridge.
- VPC flow logs to S3 may name a folder (`arn:aws:s3:::bucket/prefix/`); moto looks the whole
  `bucket/prefix/` up as a bucket name, finds none, and fails the stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import boto3
from moto import settings
from moto.cloudformation import parsing
from moto.cloudformation.custom_model import CustomModel
from moto.core.common_models import CloudFormationModel
from moto.ec2.models.flow_logs import FlowLogsBackend
from moto.ec2.models.security_groups import SecurityGroup
from moto.kms.models import Key
from moto.s3.models import FakeBucket, s3_backends

#: moto's own create_from_cloudformation_json of the types fixed around it, kept once so that
#: install() wraps the originals however often it runs.
_ORIGINAL_CREATE = {
    model: model.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    for model in (Key, SecurityGroup, FakeBucket)
}
Props = dict[str, Any]


def _around_create(
    model: type,
    before: Callable[[Props], None] | None = None,
    after: Callable[[Any, Props, str, str], None] | None = None,
) -> None:
    """moto's creation of `model` from a template, with `before(props)` fixing the properties
    first and `after(created, props, account_id, region)` doing what it leaves out."""
    original = _ORIGINAL_CREATE[model]

    def create(
        cls: type,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        props = cloudformation_json.get("Properties", {})
        if before is not None:
            before(props)
        created = original(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        if after is not None:
            after(created, props, account_id, region_name)
        return created

    model.create_from_cloudformation_json = classmethod(create)  # type: ignore[attr-defined]


def _kms_tags(props: Props) -> None:
    props["Tags"] = [
        {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
        for t in props.get("Tags", [])
    ]


_original_create_flow_logs = FlowLogsBackend.create_flow_logs


def _create_flow_logs(
    self: Any,
    resource_type,
    resource_ids,
    traffic_type,
    permission_arn,
    destination_type,
    destination,
    *rest: Any,
):
    bucket_only = destination
    if destination_type == "s3" and destination and destination.count("/") > 0:
        bucket_only = destination.split("/", 1)[0]
    flow_logs, unsuccessful = _original_create_flow_logs(
        self,
        resource_type,
        resource_ids,
        traffic_type,
        permission_arn,
        destination_type,
        bucket_only,
        *rest,
    )
    for flow_log in flow_logs:
        flow_log.log_destination = destination
    return flow_logs, unsuccessful


_original_custom_create = CustomModel.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """AwsCustomResource's flattening: {"A": [{"B": 1}]} -> {"A.0.B": 1}."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _custom_from_cfn(
    cls: type,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
):
    if kwargs.get("ResourceType") != "Custom::AWS":
        return _original_custom_create(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
    call = json.loads(cloudformation_json["Properties"]["Create"])
    client = boto3.client(
        call["service"].lower(),
        region_name=region_name,
        endpoint_url=f"http://127.0.0.1:{settings.moto_server_port()}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    action = re.sub(r"(?<!^)(?=[A-Z])", "_", call["action"]).lower()
    response = getattr(client, action)(**call.get("parameters", {}))
    response.pop("ResponseMetadata", None)
    data = _flatten(response)
    if call.get("outputPaths"):
        data = {k: v for k, v in data.items() if k in call["outputPaths"]}
    physical = call.get("physicalResourceId", {}).get("id", resource_name)
    resource = CustomModel(region_name, "local", kwargs["LogicalId"], physical)
    resource.set_data(data)
    return resource


def _egress_arguments(rule: dict[str, Any]) -> dict[str, Any]:
    """An egress rule as moto's authorize/revoke arguments."""
    out: dict[str, Any] = {
        "ip_protocol": str(rule["IpProtocol"]),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "ip_ranges": [],
        "source_groups": [],
        "prefix_list_ids": [],
    }
    if rule.get("CidrIp"):
        out["ip_ranges"] = [{"CidrIp": rule["CidrIp"], "Description": rule.get("Description")}]
    if rule.get("DestinationSecurityGroupId"):
        out["source_groups"] = [{"GroupId": rule["DestinationSecurityGroupId"]}]
    if rule.get("DestinationPrefixListId"):
        out["prefix_list_ids"] = [{"PrefixListId": rule["DestinationPrefixListId"]}]
    return out


def _inline_egress(group: SecurityGroup, props: Props, account_id: str, region: str) -> None:
    from moto.ec2.models import ec2_backends

    inline = props.get("SecurityGroupEgress")
    if inline:
        backend = ec2_backends[account_id][region]
        backend.revoke_security_group_egress(group.id, "-1", None, None, [{"CidrIp": "0.0.0.0/0"}])
        for rule in inline:
            backend.authorize_security_group_egress(group.id, **_egress_arguments(rule))


class _Resource:
    """What moto asks of a resource type, from two class attributes and `create(props, ...)`.

    Mixed in ahead of CloudFormationModel: moto's type map lists that class's direct
    subclasses only, so each resource type below names it itself.
    """

    CFN_TYPE = ""
    #: The property that names the resource ("" when the type has none).
    NAME_PROPERTY = ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.CFN_TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        props = cloudformation_json.get("Properties", {})
        return cls.create(props, resource_name, account_id, region_name)

    @classmethod
    def create(cls, props: dict[str, Any], name: str, account_id: str, region: str) -> Any:
        raise NotImplementedError


class SecurityGroupEgressResource(_Resource, CloudFormationModel):
    """AWS::EC2::SecurityGroupEgress: one rule authorized on its group."""

    CFN_TYPE = "AWS::EC2::SecurityGroupEgress"

    def __init__(self, group_id: str, properties: dict[str, Any]) -> None:
        self.group_id = group_id
        self.properties = properties

    @classmethod
    def create(
        cls, props: dict[str, Any], name: str, account_id: str, region: str
    ) -> SecurityGroupEgressResource:
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[account_id][region]
        backend.authorize_security_group_egress(props["GroupId"], **_egress_arguments(props))
        return cls(props["GroupId"], props)

    @property
    def physical_resource_id(self) -> str:
        return f"{self.group_id}-egress"


def _bucket_events(bucket: FakeBucket, props: Props, account_id: str, region: str) -> None:
    config = props.get("NotificationConfiguration", {})
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        backend = s3_backends[account_id]["aws"]
        backend.put_bucket_notification_configuration(bucket.name, {"EventBridgeConfiguration": {}})


class ModelPackageGroupResource(_Resource, CloudFormationModel):
    """AWS::SageMaker::ModelPackageGroup: Ref and GetAtt ModelPackageGroupArn give the ARN."""

    CFN_TYPE = "AWS::SageMaker::ModelPackageGroup"
    NAME_PROPERTY = "ModelPackageGroupName"

    def __init__(self, name: str, arn: str) -> None:
        self.name = name
        self.arn = arn

    @classmethod
    def create(
        cls, props: dict[str, Any], name: str, account_id: str, region: str
    ) -> ModelPackageGroupResource:
        from moto.sagemaker.models import sagemaker_backends

        name = props.get("ModelPackageGroupName", name)
        backend = sagemaker_backends[account_id][region]
        arn = backend.create_model_package_group(
            model_package_group_name=name,
            model_package_group_description=props.get("ModelPackageGroupDescription", ""),
            tags=props.get("Tags"),
        )
        return cls(name, arn)

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ModelPackageGroupArn", "CreationTime", "ModelPackageGroupStatus")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn if attribute_name == "ModelPackageGroupArn" else ""


def install() -> None:
    """Apply the fixes (idempotent)."""
    # moto builds its type map once from CloudFormationModel's subclasses: include ours.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    CustomModel.create_from_cloudformation_json = classmethod(_custom_from_cfn)  # type: ignore[method-assign]
    FlowLogsBackend.create_flow_logs = _create_flow_logs  # type: ignore[method-assign]
    _around_create(Key, before=_kms_tags)
    _around_create(SecurityGroup, after=_inline_egress)
    _around_create(FakeBucket, after=_bucket_events)
