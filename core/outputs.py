"""Names of the stack's CloudFormation outputs: the operator CLI finds everything by these.

No aws_cdk import: the stack writes these outputs, the operator side reads them.
"""

STATE_MACHINE_ARN = "StateMachineArn"
DATA_BUCKET = "DataBucketName"
ARTIFACTS_BUCKET = "ArtifactsBucketName"
TOPIC_ARN = "NotificationTopicArn"
SECURITY_GROUP_ID = "TrainingSecurityGroupId"
SUBNET_IDS = "PrivateSubnetIds"
TRAIN_DATA_URI = "TrainDataS3Uri"
#: JSON of the run defaults the stack was synthesized with (backend, instance type/count, spot,
#: runtime limits, hyperparameters): the CLI validates overrides against the deployed stack.
RUN_DEFAULTS = "RunDefaults"
#: JSON of core.workflow_settings.WorkflowSettings (role, image, code bundle, network, buckets,
#: metrics, channels, tags, defaults): the notebook path builds the state machine's request from it.
JOB_SETTINGS = "JobSettings"
MODEL_PACKAGE_GROUP = "ModelPackageGroupName"
