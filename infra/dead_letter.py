"""The dead-letter queue of an asynchronous start (the schedule, the new-data rule).

Encrypted with the stack's key, TLS only, 14 days to read a failed start before it is gone; an
alarm on its depth is in infra/monitoring.py.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def dead_letter_queue(scope: Construct, key: kms.IKey, owner: str) -> sqs.Queue:
    """`scope`'s "DeadLetterQueue"; `owner` names what dead-letters into it (nag reason)."""
    queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )
    # The DLQ is itself the end of the line: a DLQ for it would never be read.
    cdk.Validations.of(queue).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-SQS3",
            reason=f"This queue is the {owner}'s dead-letter queue; it needs none of its own.",
        )
    )
    return queue
