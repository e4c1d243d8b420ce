"""The notebook path: the stack's job from the SageMaker Python SDK.

    from trainops.sdk import Stack
    stack = Stack("SageMakerTraining")              # or Stack(endpoint_url=...) on the emulator
    trainer = stack.model_trainer(instance_count=2, hyperparameters={"epochs": 5})  # SDK 3.x
    trainer.train(input_data_config=stack.inputs())
    estimator = stack.pytorch_estimator(instance_count=2)                           # SDK 2.x
    estimator.fit(stack.inputs())

Each object starts the job the state machine starts for the same input (tests/e2e compare the
two requests field by field).
"""

from trainops.sdk.errors import SdkError
from trainops.sdk.stack import Stack

__all__ = ["SdkError", "Stack"]
