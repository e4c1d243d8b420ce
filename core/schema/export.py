"""The models as JSON Schema documents (editors, documentation): pydantic's own rendering,
without what only describes Python (`null` defaults of keys whose absence means "use the
stack's value")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model` as a JSON Schema (validation mode: what a user may write)."""
    schema = model.model_json_schema(mode="validation")
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    return {"$schema": DRAFT, **schema}
