"""Where the SDKs send traffic: only to the endpoint given, never to telemetry or metadata.

Both SDK majors phone home (a telemetry request per call) unless the SDK defaults config says
`TelemetryOptOut`, and boto3 probes the EC2 metadata address when no credentials are set. Every
session made here carries the opt-out; pointing at an emulator also sets fake credentials.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, TypeVar

from trainops.sdk.errors import SdkError

#: The SageMaker SDK defaults config (same schema in 2.x and 3.x): telemetry off.
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
PIN_2 = "sagemaker==2.257.7"
PIN_3 = "sagemaker-train==1.27.0"


def point_at(endpoint_url: str) -> None:
    """Every AWS client this process makes goes to `endpoint_url` (the emulator)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for key, value in _FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)


def installed_major() -> int | None:
    """3 when `sagemaker.train` (SDK 3.x) imports here, 2 for `sagemaker.pytorch` (2.x)."""
    try:
        if importlib.util.find_spec("sagemaker.train") is not None:
            return 3
        if importlib.util.find_spec("sagemaker.pytorch") is not None:
            return 2
    except ModuleNotFoundError:
        return None
    return None


def require(major: int) -> None:
    """One line naming the install when the wanted SDK major is not the one here."""
    found = installed_major()
    if found == major:
        return
    pin = PIN_2 if major == 2 else PIN_3
    other = f" (SDK {found}.x is installed here: the two cannot share one environment)"
    raise SdkError(
        f"SageMaker Python SDK {major}.x is not installed here{other if found else ''}: "
        f"pip install '{pin}'" + (" in its own environment (make .venv-sdk2)" if major == 2 else "")
    )


SessionT = TypeVar("SessionT")


def session(session_class: type[SessionT], region: str, profile: str | None) -> SessionT:
    """A SageMaker session (`session_class`: 2.x's or 3.x's) with telemetry off, for the
    stack's profile and region; clients follow AWS_ENDPOINT_URL when set."""
    import boto3

    return session_class(  # type: ignore[call-arg]
        boto_session=boto3.Session(region_name=region, profile_name=profile),
        sagemaker_config=SDK_CONFIG,
    )
