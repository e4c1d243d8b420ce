"""The deployed training security group has the template's rules, and no others.

On AWS a group keeps EC2's default allow-all egress unless the template gives it inline egress;
the stack does (a marker rule that matches nothing), so the group's egress is exactly: all
traffic to itself, HTTPS to S3's prefix list.
"""

from __future__ import annotations

from core import outputs as names

from .conftest import E2eStack


def test_training_group_has_self_rules_and_no_open_egress(stack: E2eStack) -> None:
    group_id = stack.outputs.values[names.SECURITY_GROUP_ID]
    (group,) = stack.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    egress = group["IpPermissionsEgress"]
    assert not [r for r in egress for ip in r.get("IpRanges", []) if ip["CidrIp"] == "0.0.0.0/0"]
    to_self = [
        r
        for r in egress
        if r["IpProtocol"] == "-1" and group_id in {p["GroupId"] for p in r["UserIdGroupPairs"]}
    ]
    assert len(to_self) == 1
    https = [r for r in egress if r["IpProtocol"] == "tcp" and r.get("FromPort") == 443]
    assert https and all(r.get("PrefixListIds") for r in https)
    from_self = [
        r
        for r in group["IpPermissions"]
        if r["IpProtocol"] == "-1" and group_id in {p["GroupId"] for p in r["UserIdGroupPairs"]}
    ]
    assert len(from_self) == 1
