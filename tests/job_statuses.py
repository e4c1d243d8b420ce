"""A training job's SecondaryStatusTransitions as the tests read them (emulator and e2e)."""

from __future__ import annotations

from typing import Any

#: A job that ran to the end, as DescribeTrainingJob lists its secondary statuses.
COMPLETED = ["Starting", "Downloading", "Training", "Uploading", "Completed"]


def secondary_statuses(job: dict[str, Any]) -> list[str]:
    """The statuses a described job went through, oldest first ([] before its first)."""
    return [t["Status"] for t in job.get("SecondaryStatusTransitions", [])]
