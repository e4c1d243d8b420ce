"""The emulator's SageMaker training-job API: moto's, with jobs that really run.

moto 5.2.5 records CreateTrainingJob and reports it Completed at once, and has no
StopTrainingJob. Patched here: CreateTrainingJob validates the whole request against botocore's
model (moto drops fields it does not know), refuses a reused name as SageMaker does, and hands
the job to `LocalSageMaker`; StopTrainingJob stops it. DescribeTrainingJob and ListTrainingJobs
stay moto's own and report the fields the running job updates. ListTags of a versioned model
package (`model-package/<group>/<n>`) fails in moto (it splits the ARN in two): answered here.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from localaws.api_model import RequestInvalid, validate_request
from localaws.training_jobs import LocalSageMaker

_ORIGINAL_CREATE = SageMakerResponse.create_training_job
_STATE: dict[str, LocalSageMaker] = {}


def _create_training_job(self: SageMakerResponse) -> ActionResult:
    executor = _STATE.get("executor")
    request: dict[str, Any] = json.loads(self.body or "{}")
    try:
        validate_request("sagemaker", "CreateTrainingJob", request)
    except RequestInvalid as exc:
        raise ValidationError(message="; ".join(exc.problems)) from None
    name = request["TrainingJobName"]
    if name in self.sagemaker_backend.training_jobs:
        raise ResourceInUseException(
            f"Training job names must be unique within an AWS account and region, "
            f"and a training job with this name already exists ({name})"
        )
    result = _ORIGINAL_CREATE(self)
    if executor is not None:
        executor.start(request, self.sagemaker_backend.training_jobs[name])
    return result


def _stop_training_job(self: SageMakerResponse) -> EmptyResult:
    name = self._get_param("TrainingJobName")
    if name not in self.sagemaker_backend.training_jobs:
        raise ValidationError(message=f"Requested resource not found: training job {name}")
    executor = _STATE.get("executor")
    if executor is not None:
        executor.stop(name)
    return EmptyResult()


_ORIGINAL_LIST_TAGS = SageMakerModelBackend.list_tags


def _list_tags(self: SageMakerModelBackend, arn: str, **page: Any) -> tuple[list, str | None]:
    """(tags, next token), as moto's paginated original returns them; a package's tags fit
    one page (CreateModelPackage accepts at most 50)."""
    if ":model-package/" in arn:
        for package in self.model_packages.values():
            if package.arn.lower() == arn.lower():
                return list(package.tags or []), None
    return _ORIGINAL_LIST_TAGS(self, arn=arn, **page)


def install(executor: LocalSageMaker) -> None:
    """Make the emulated SageMaker API run jobs with `executor`."""
    _STATE["executor"] = executor
    SageMakerResponse.create_training_job = _create_training_job  # type: ignore[method-assign]
    SageMakerResponse.stop_training_job = _stop_training_job  # type: ignore[attr-defined]
    SageMakerModelBackend.list_tags = _list_tags  # type: ignore[method-assign]
