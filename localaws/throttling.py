"""Throttling on demand: the emulator answers chosen operations with AWS's own throttling error,
as a busy account does, so a client's retries and the error it ends with are tested for real.

`EmbeddedAws.throttle("DescribeStacks", times=3)`: the next three DescribeStacks calls get
HTTP 400 `Throttling` (query protocol: CloudFormation, IAM, ...) or `ThrottlingException` (JSON
protocol: Step Functions, SageMaker, Logs, ...), then the operation answers again.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Throttle:
    """How many of the next calls of each operation to refuse, and the WSGI layer that does it."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}
        self._lock = threading.Lock()
        #: Calls refused so far, per operation.
        self.refused: dict[str, int] = {}

    def arm(self, operation: str, times: int) -> None:
        with self._lock:
            self._left[operation] = times

    def _take(self, operation: str) -> bool:
        with self._lock:
            if self._left.get(operation, 0) <= 0:
                return False
            self._left[operation] -= 1
            self.refused[operation] = self.refused.get(operation, 0) + 1
            return True

    def wrap(self, app: Wsgi) -> Wsgi:
        def throttled(environ: dict[str, Any], start_response: Callable[..., Any]):
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            operation = target.rsplit(".", 1)[-1] if target else _query_action(environ)
            if not operation or not self._take(operation):
                return app(environ, start_response)
            if target:
                body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
                headers = [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-ErrorType", "ThrottlingException"),
                ]
            else:
                body = (
                    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                    f"<Message>Rate exceeded</Message></Error><RequestId>{uuid.uuid4()}"
                    "</RequestId></ErrorResponse>"
                )
                headers = [("Content-Type", "text/xml")]
            start_response("400 Bad Request", [*headers, ("Content-Length", str(len(body)))])
            return [body.encode()]

        return throttled


def _query_action(environ: dict[str, Any]) -> str:
    """`Action` of a query-protocol call (URL or form body); the body stays readable."""
    found = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if found:
        return found[0]
    if "x-www-form-urlencoded" not in environ.get("CONTENT_TYPE", ""):
        return ""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
