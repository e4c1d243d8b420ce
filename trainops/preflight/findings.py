"""What every preflight check returns and shares: the run checked, one finding, the line format.

Kept apart so the check modules depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

REDEPLOY = "redeploy the stack (npx cdk deploy)"


@dataclass(frozen=True)
class Target:
    """The run being checked."""

    instance_type: str
    instance_count: int
    spot: bool

    @property
    def market(self) -> str:
        return "spot" if self.spot else "on-demand"


@dataclass(frozen=True)
class Finding:
    """One check's outcome; `fix` says what to do when it failed."""

    check: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.check:<15} {'ok' if self.ok else 'FAIL':<4}  {self.detail}"
        return text if self.ok else f"{text}; fix: {self.fix}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return str(exc)
