"""The stack's request as both SDK majors read it: one run's preview in the parts their
constructors take, its S3 channels, and the name of the job the object started last."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preview:
    """The next attempt's CreateTrainingJob request of a new run, by the parts SDKs take."""

    run: Any  # trainops.sdk.stack.SdkRun
    request: dict[str, Any]
    spec: dict[str, Any]
    resources: dict[str, Any]
    stopping: dict[str, Any]
    vpc: dict[str, Any]

    @classmethod
    def of(cls, stack: Any, overrides: dict[str, Any]) -> Preview:
        run = stack.run(**overrides)
        request = run.preview()
        parts = ("AlgorithmSpecification", "ResourceConfig", "StoppingCondition", "VpcConfig")
        return cls(run, request, *(request[part] for part in parts))


class StartsRuns:
    """An SDK object whose every start is the next attempt of one run (its `_run`)."""

    @property
    def job_name(self) -> str | None:
        """The name of the latest job this object started."""
        return self._run.job_name


def s3_channels(channels: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict]]:
    """Each request channel as (name, its S3DataSource, `input_mode` keyword when it sets one)."""
    for c in channels:
        mode = {"input_mode": c["InputMode"]} if "InputMode" in c else {}
        yield c["ChannelName"], c["DataSource"]["S3DataSource"], mode
