"""Test-wide environment: offline, credential-free, quiet.

Set before anything imports boto3, sagemaker or aws_cdk: fake credentials and a region so no
client probes the EC2 metadata address, and CDK's built-in template validator off (one test
turns it back on explicitly).
"""

import os

_OFFLINE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "CDK_VALIDATION": "false",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    # The emulator's StopTrainingJob grace (SageMaker's is 120 s; nothing reaches the job's
    # processes in it either way): short, so a stopped job's test does not wait 2 minutes.
    "TRAINOPS_STOP_GRACE_S": "3",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
for _key, _value in _OFFLINE_ENV.items():
    os.environ[_key] = _value
for _key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_key, None)


# --- shared fixtures ---------------------------------------------------------------------------
import tarfile  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

STUB_CODE = Path(__file__).resolve().parent / "fixtures" / "stub_code"


@pytest.fixture(scope="session")
def stub_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sourcedir.tar.gz of a stub entry script (the real bundle's layout) for plumbing tests."""
    path = tmp_path_factory.mktemp("bundle") / "sourcedir.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(STUB_CODE / "requirements.txt", arcname="requirements.txt")
        tar.add(STUB_CODE / "training", arcname="training")
    return path


from tests import timing  # noqa: E402


def pytest_report_header(config: pytest.Config) -> str:
    return f"time scale: {timing.scale():g} ({timing.SCALE_ENV}; every wait and timeout mark)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    timing.scale_timeout_marks(items)
