#!/usr/bin/env python3
"""CDK app: cdk.json context (+ `-c training.<key>=<value>`) -> TrainingConfig -> TrainingStack.

`npx cdk synth` (or `make synth`) runs it through the CLI; `CDK_OUTDIR=cdk.out python app.py`
works too. cdk-nag's AwsSolutions checks run on every synth.
"""

import sys

from core.config import ConfigError
from core.wheelhouse import BundleError
from infra.node_runtime import quiet_jsii


def main() -> int:
    note = quiet_jsii()  # before aws_cdk starts jsii's Node process
    if note:
        print(note, file=sys.stderr)
    from infra.stack import create_app

    try:
        app, _ = create_app()
    except ConfigError as error:
        print(
            f"configuration error (cdk.json training / -c training.KEY=VALUE): {error}",
            file=sys.stderr,
        )
        return 2
    except BundleError as error:
        print(f"code bundle error (training.source_dir / requirements): {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
