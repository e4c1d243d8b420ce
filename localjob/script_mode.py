"""The script-mode hyperparameters SageMaker's toolkit reads, for local runs.

The state machine renders the same keys in ASL (infra/workflow); tests check both sides agree.
"""

from __future__ import annotations

from training import contract


def script_mode_hyperparameters(
    *,
    submit_directory: str,
    job_name: str,
    instance_type: str,
    backend: str,
    processes_per_host: int | None = None,
    region: str = "us-east-1",
) -> dict[str, str]:
    """`sagemaker_*` keys for one job: program, code location, launcher flag, processes per host.

    Values are strings, as CreateTrainingJob requires; flags are "true" (JSON true for the
    toolkit), never Python's "True".
    """
    if backend not in contract.BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {', '.join(contract.BACKENDS)}")
    params = {
        "sagemaker_program": contract.ENTRY_POINT,
        "sagemaker_submit_directory": submit_directory,
        "sagemaker_region": region,
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": job_name,
        "sagemaker_instance_type": instance_type,
    }
    if backend in contract.LAUNCHER_FLAGS:
        params[contract.LAUNCHER_FLAGS[backend]] = "true"
    if processes_per_host is not None:
        # Read by the toolkit's runners; on CPU instances their default is 1 process per host.
        params["sagemaker_mpi_num_of_processes_per_host"] = str(processes_per_host)
    return params
