"""The Node.js the CDK runs on: which majors it supports, and one plain line when it is another.

The CDK's Python library drives a Node process (jsii). On a Node major outside SUPPORTED_MAJORS
jsii prints a banner before its protocol starts, and its Python side echoes each banner line as
a bytes repr (`b'!!  Node 20 is end-of-life ...\\n'`). `quiet_jsii()`, called before aws_cdk is
imported, says the same in one line and silences the banner (jsii's own switches).
`python -m infra.node_runtime` prints the line (`make setup` does).
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Node majors jsii (and so the CDK) supports today; others work or not, unsupported.
SUPPORTED_MAJORS = (22, 24)
EOL_SILENCE = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
UNTESTED_SILENCE = "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"


def node_version() -> str | None:
    """`node --version` of the Node jsii starts (JSII_NODE or `node`), e.g. "v20.20.2"."""
    try:
        done = subprocess.run(
            [os.environ.get("JSII_NODE", "node"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def verdict(version: str | None) -> str:
    """One line about this Node for the CDK."""
    wanted = " or ".join(str(m) for m in SUPPORTED_MAJORS)
    if version is None:
        return f"Node.js not found: the CDK needs Node {wanted} (install it, then `make setup`)"
    major = int(version.lstrip("v").split(".", 1)[0])
    if major in SUPPORTED_MAJORS:
        return f"Node {version}: supported by the CDK"
    if major < min(SUPPORTED_MAJORS):
        return (
            f"Node {version} is end-of-life for the CDK (supported: {wanted}): synth and deploy "
            f"still work on it, unsupported; upgrade to Node {wanted}"
        )
    return f"Node {version} is untested with the CDK (supported: {wanted}): use {wanted}"


def quiet_jsii() -> str | None:
    """Silence jsii's Node banner; the line to print instead, unless the caller already
    silenced it (the Makefile and the tests do) or this Node is supported."""
    version = node_version()
    if version is None:
        return None
    major = version.lstrip("v").split(".", 1)[0]
    if int(major) in SUPPORTED_MAJORS:
        return None
    silenced = os.environ.get(EOL_SILENCE) == major or os.environ.get(UNTESTED_SILENCE)
    os.environ.setdefault(EOL_SILENCE, major)
    os.environ.setdefault(UNTESTED_SILENCE, "1")
    return None if silenced else f"note: {verdict(version)}"


if __name__ == "__main__":
    print(verdict(node_version()), file=sys.stderr)
