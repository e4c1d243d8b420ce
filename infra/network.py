"""VPC for training jobs: isolated subnets, VPC endpoints, the self-referencing security group.

No NAT gateway and no internet gateway: jobs reach S3 through a gateway endpoint and the AWS
APIs they need through interface endpoints. The training security group allows all traffic
from and to itself (NCCL/EFA/SMDDP between the nodes of one job) and, outbound, only HTTPS to
the S3 prefix list and to the endpoints' security group.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import custom_resources as cr
from constructs import Construct

from core.config import TrainingConfig
from core.schema.limits import SUBNET_PREFIX
from infra import nag

#: Matches nothing (ICMP type 252, code 86, to a broadcast address): CDK's own marker for a group
#: with no outbound rule, here it removes EC2's default allow-all egress.
NO_DEFAULT_EGRESS = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic (removes the default allow-all egress)",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}
#: Interface endpoints for calls made from inside the container (ECR for custom/derived images,
#: Logs and CloudWatch for the script's own calls, STS/KMS for SDK credential and key calls,
#: SageMaker API for jobs that describe themselves or register models). Only built when
#: network_isolation is false: an isolated container has no network and no credentials, and
#: what SageMaker does for it (channel downloads, checkpoint sync, the model upload) goes
#: through the VPC's S3 gateway endpoint; image pulls, logs and metrics are the service's own.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}
HTTPS = ec2.Port.tcp(443)


class Network(Construct):
    """`vpc`, `security_group` (training), `endpoint_security_group` (None when isolated),
    `subnet_ids`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: TrainingConfig,
        flow_log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        # Environment-agnostic stacks know 2 AZs; name more explicitly from Fn::GetAZs.
        azs = [cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(config.max_azs)]
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            availability_zones=azs,
            nat_gateways=0,
            create_internet_gateway=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="training",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=SUBNET_PREFIX,
                )
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.subnet_ids: list[str] = list(self.subnets.subnet_ids)

        self.security_group = ec2.SecurityGroup(
            self,
            "TrainingSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="SageMaker training nodes: all traffic within the group, HTTPS out",
        )
        sg = self.security_group
        # The group's rules are separate resources (they reference the group itself), so the
        # group has no inline egress, and then EC2 keeps its default allow-all egress rule:
        # CloudFormation removes that default only for a group WITH inline egress. CDK's
        # "disallow all" marker (a rule that matches nothing) is that inline egress.
        cfn_sg = sg.node.default_child
        assert isinstance(cfn_sg, ec2.CfnSecurityGroup)
        cfn_sg.add_property_override("SecurityGroupEgress", [NO_DEFAULT_EGRESS])
        sg.add_ingress_rule(sg, ec2.Port.all_traffic(), "all traffic between nodes of a job")
        sg.add_egress_rule(sg, ec2.Port.all_traffic(), "all traffic between nodes of a job")
        self.endpoint_security_group: ec2.SecurityGroup | None = None
        if not config.network_isolation:
            self.endpoint_security_group = ec2.SecurityGroup(
                self,
                "EndpointSecurityGroup",
                vpc=self.vpc,
                allow_all_outbound=False,
                description="VPC interface endpoints: HTTPS from the training security group",
            )
            sg.add_egress_rule(
                self.endpoint_security_group, HTTPS, "HTTPS to the interface endpoints"
            )
            self.endpoint_security_group.add_ingress_rule(sg, HTTPS, "HTTPS from training nodes")

        self.s3_prefix_list_id = self._s3_prefix_list_id()
        sg.add_egress_rule(
            ec2.Peer.prefix_list(self.s3_prefix_list_id), HTTPS, "HTTPS to S3 (gateway endpoint)"
        )

        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for name, service in () if config.network_isolation else INTERFACE_ENDPOINTS.items():
            self.endpoints[name] = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
                security_groups=[sg for sg in [self.endpoint_security_group] if sg],
                open=False,  # no VPC-CIDR rule: only the training SG may connect
                private_dns_enabled=True,
            )

    def _s3_prefix_list_id(self) -> str:
        """The region's S3 prefix list id (pl-...): CloudFormation cannot name it, so look it
        up at deploy time with one DescribePrefixLists call."""
        name = f"com.amazonaws.{cdk.Aws.REGION}.s3"
        call = cr.AwsSdkCall(
            service="EC2",
            action="describePrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [name]}]},
            physical_resource_id=cr.PhysicalResourceId.of(f"s3-prefix-list-{cdk.Aws.REGION}"),
            output_paths=["PrefixLists.0.PrefixListId"],
        )
        lookup = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_create=call,
            on_update=call,
            install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribePrefixLists"], resources=["*"])]
            ),
        )
        self.prefix_list_lookup = lookup
        _drop_redundant_depends_on(cdk.Stack.of(self))
        nag.acknowledge(
            lookup,
            {
                "AwsSolutions-IAM5[Resource::*]": "ec2:DescribePrefixLists has no resource-level"
                " permissions; the lookup is read-only and runs once per deployment.",
            },
        )
        return lookup.get_response_field("PrefixLists.0.PrefixListId")


def _drop_redundant_depends_on(stack: cdk.Stack) -> None:
    """The AwsCustomResource provider function DependsOn its role although it already GetAtts
    the role's Arn (cfn-lint W3005); remove the redundant DependsOn."""
    provider = stack.node.try_find_child("AWS679f53fac002430cb0da5b7982bd2287")
    if provider is None:
        return
    function = provider.node.default_child
    if isinstance(function, cdk.CfnResource):
        function.add_deletion_override("DependsOn")
