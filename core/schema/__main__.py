"""`python -m core.schema [--check]`: write (or compare) docs/cdk-training.schema.json, the JSON
schema of cdk.json with its `training` block generated from StackSettings."""

from __future__ import annotations

import argparse
import sys

from core.schema.export import CDK_JSON_SCHEMA_PATH, cdk_json_schema_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = cdk_json_schema_text()
    if args.check:
        current = CDK_JSON_SCHEMA_PATH.read_text() if CDK_JSON_SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{CDK_JSON_SCHEMA_PATH} is stale: run python -m core.schema", file=sys.stderr)
            return 1
        return 0
    CDK_JSON_SCHEMA_PATH.write_text(text)
    print(f"wrote {CDK_JSON_SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
