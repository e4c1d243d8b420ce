"""Errors in the protocol of the service asked: moto answers some refusals (IAM enforcement's
AccessDenied, for one) as query-protocol XML even to JSON-protocol services (Step Functions,
SageMaker, Logs, ...), where botocore can read only the HTTP status. AWS answers those services
in JSON (`__type` + `message`, AccessDenied as `AccessDeniedException`); so does this layer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from localaws.throttling import Wsgi

_FIELD = re.compile(r"<(Code|Message)>(.*?)</\1>", re.S)
#: The names AWS's JSON-protocol services give the query protocol's codes.
_JSON_CODES = {"AccessDenied": "AccessDeniedException"}


def wrap(app: Wsgi) -> Wsgi:
    def as_json(environ: dict[str, Any], start_response: Callable[..., Any]):
        if not environ.get("HTTP_X_AMZ_TARGET"):
            return app(environ, start_response)
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            seen.update(status=status, headers=headers)
            return lambda data: None

        chunks = app(environ, capture)
        body = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        status, headers = seen["status"], seen["headers"]
        fields = dict(_FIELD.findall(body.decode("utf-8", "replace")))
        if status.startswith("4") and body.lstrip().startswith(b"<") and "Code" in fields:
            code = _JSON_CODES.get(fields["Code"], fields["Code"])
            body = json.dumps({"__type": code, "message": fields.get("Message", "")}).encode()
            headers = [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-ErrorType", code),
                ("Content-Length", str(len(body))),
            ]
        start_response(status, headers)
        return [body]

    return as_json
