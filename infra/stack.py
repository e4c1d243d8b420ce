"""The stack: storage, network, image, code bundle, execution role, workflow, schedule; outputs.

`create_app()` is what app.py, the tests and the benchmark call: it loads cdk.json's context
(the CLI passes the same, plus `-c` overrides, through the environment, which wins), validates
it into one `TrainingConfig`, builds the stack and registers the cdk-nag checks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from core import outputs
from core.config import TrainingConfig, load_cdk_json_context
from infra import nag
from infra.images import TrainingImage
from infra.monitoring import TrainingMonitoring
from infra.network import Network
from infra.new_data import NewDataTrigger
from infra.outcomes import OutcomeNotifications
from infra.registry import ModelRegistry
from infra.roles import ExecutionRole
from infra.schedule import RetrainingSchedule
from infra.source_bundle import SourceBundle
from infra.storage import Storage
from infra.workflow import TrainingWorkflow

REPO_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = REPO_ROOT / "cdk.json"


class TrainingStack(cdk.Stack):
    """Everything one `cdk deploy` creates. Environment-agnostic: no account, no region."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: TrainingConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Multi-node PyTorch Lightning training on SageMaker (VPC, buckets,"
            " roles, state machine, schedule)",
            **kwargs,
        )
        self.config = config
        self.storage = Storage(self, "Storage", config=config)
        self.network = Network(
            self, "Network", config=config, flow_log_bucket=self.storage.access_log_bucket
        )
        self.image = TrainingImage(self, "Image", config=config)
        self.code = SourceBundle(
            self,
            "Code",
            image_family=config.image_family,
            python=config.python_version,
            project=Path(config.source_dir) if config.source_dir else None,
            config=config.config,
        )
        self.execution = ExecutionRole(
            self,
            "Execution",
            data_bucket=self.storage.data_bucket,
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
            code_bucket=self.code.bucket,
            code_object_key=self.code.object_key,
            image_repository_arn=self.image.repository_arn,
            vpc=self.network.vpc,
            subnet_ids=self.network.subnet_ids,
            security_group=self.network.security_group,
        )
        self.registry = (
            ModelRegistry(self, "ModelRegistry", config=config) if config.model_registry else None
        )
        self.workflow = TrainingWorkflow(
            self,
            "Workflow",
            config=config,
            registry=self.registry,
            execution_role=self.execution.role,
            data_bucket=self.storage.data_bucket,
            artifacts_bucket=self.storage.artifacts_bucket,
            key=self.storage.key,
            security_group=self.network.security_group,
            subnet_ids=self.network.subnet_ids,
            image_uri=self.image.image_uri,
            code_s3_uri=self.code.s3_uri,
            code_file_name=self.code.file_name,
        )
        self.schedule = (
            RetrainingSchedule(
                self,
                "Retraining",
                config=config,
                state_machine=self.workflow.state_machine,
                key=self.storage.key,
            )
            if config.schedule_cron
            else None
        )
        self.outcomes = OutcomeNotifications(
            self,
            "Outcomes",
            state_machine=self.workflow.state_machine,
            topic=self.workflow.topic,
            key=self.storage.key,
        )
        self.new_data = (
            NewDataTrigger(
                self,
                "NewData",
                config=config,
                data_bucket=self.storage.data_bucket,
                state_machine=self.workflow.state_machine,
                key=self.storage.key,
            )
            if config.retrain_on_new_data
            else None
        )
        self.monitoring = TrainingMonitoring(
            self,
            "Monitoring",
            config=config,
            state_machine=self.workflow.state_machine,
            topic=self.workflow.topic,
            dead_letter_queue=self.schedule.dead_letter_queue if self.schedule else None,
            new_data_dead_letter_queue=(
                self.new_data.dead_letter_queue if self.new_data is not None else None
            ),
            job_name_prefix=config.job_name_prefix,
        )
        for key, value in sorted(config.tags.items()):
            cdk.Tags.of(self).add(key, value)
        nag.acknowledge_stack(self)
        self._outputs()

    def _outputs(self) -> None:
        out = {
            outputs.STATE_MACHINE_ARN: self.workflow.state_machine.state_machine_arn,
            outputs.TOPIC_ARN: self.workflow.topic.topic_arn,
            outputs.DATA_BUCKET: self.storage.data_bucket.bucket_name,
            outputs.TRAIN_DATA_URI: self.storage.data_bucket.s3_url_for_object(
                self.config.train_prefix
            ),
            "TrainPrefix": self.config.train_prefix,
            outputs.ARTIFACTS_BUCKET: self.storage.artifacts_bucket.bucket_name,
            "AccessLogBucketName": self.storage.access_log_bucket.bucket_name,
            outputs.SECURITY_GROUP_ID: self.network.security_group.security_group_id,
            outputs.SUBNET_IDS: cdk.Fn.join(",", self.network.subnet_ids),
            "ExecutionRoleArn": self.execution.role.role_arn,
            "ImageUri": self.image.image_uri,
            "CodeS3Uri": self.code.s3_uri,
            "KeyArn": self.storage.key.key_arn,
            outputs.RUN_DEFAULTS: json.dumps(
                {
                    "backend": self.config.backend,
                    "instance_type": self.config.instance_type,
                    "instance_count": self.config.instance_count,
                    "spot": self.config.spot,
                    "max_runtime_s": self.config.max_runtime_s,
                    "max_wait_s": self.config.max_wait_s,
                    "hyperparameters": self.config.hyperparameters,
                },
                sort_keys=True,
            ),
            # Everything a job request needs: trainops.sdk builds the notebook's job from it.
            outputs.JOB_SETTINGS: json.dumps(self.workflow.settings.to_json(), sort_keys=True),
        }
        if self.new_data is not None:
            out["NewDataMarkerKey"] = self.config.retrain_marker_key
            out["NewDataDeadLetterQueueUrl"] = self.new_data.dead_letter_queue.queue_url
        if self.registry is not None:
            out[outputs.MODEL_PACKAGE_GROUP] = self.registry.group_name
        if self.schedule is not None:
            out["ScheduleName"] = self.schedule.schedule.schedule_name
            out["ScheduleDeadLetterQueueUrl"] = self.schedule.dead_letter_queue.queue_url
        for name, value in out.items():
            cdk.CfnOutput(self, name, value=value)


def app_context(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """cdk.json's context with `overrides` (same keys as `-c`) applied on top."""
    context = load_cdk_json_context(CDK_JSON)
    context.update(overrides or {})
    return context


def create_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    checks: bool = True,
) -> tuple[cdk.App, TrainingStack]:
    """The CDK app with its one stack. `context` = extra context (like `-c key=value`)."""
    # CDK's built-in template validator costs ~6 s per synth; cfn-lint (tests) checks the same
    # template, so it runs only when asked: CDK_VALIDATION=true.
    validate = os.environ.get("CDK_VALIDATION", "false").lower() == "true"
    app = cdk.App(
        context=app_context(context), outdir=outdir, builtin_cloud_formation_validation=validate
    )
    config = TrainingConfig.from_context(app.node.get_all_context())
    stack = TrainingStack(app, config.stack_name, config=config)
    if checks:
        nag.add_checks(app)
    return app, stack
