"""Start the stack's job through SDK 2.x (run in .venv-sdk2): argv = stack name, overrides JSON.

Prints the job name on the last line; `fit(wait=False)`, so it returns once the job is created.
"""

import json
import os
import sys

from trainops.sdk import Stack

stack = Stack(sys.argv[1], endpoint_url=os.environ["TRAINOPS_ENDPOINT_URL"])
estimator = stack.pytorch_estimator(**json.loads(sys.argv[2]))
estimator.fit(stack.inputs(), wait=False, logs="None")
print(estimator.job_name)
