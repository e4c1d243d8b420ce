"""The offline demo end to end vs the same training job run directly, in one process.

1. `trainops.demo.run_demo`: synth (CDK CLI) -> deploy to the embedded AWS -> upload the
   dataset -> the state machine -> CreateTrainingJob.sync -> the toolkit on 2 simulated hosts.
2. `trainops.local_train.run_local_training`: the same job (2 hosts x 1 process, the same
   hyperparameters and dataset), launched directly: no CDK, no emulator, no state machine.

Prints both, the demo's per-stage timings and two ratios against the 1.5 target: the whole
demo (synth, deploy, upload and the workflow) over the direct job, and the workflow stage alone
(execution start to end: Step Functions, emulated SageMaker, S3 transfers, the job) over the
direct job — the orchestration overhead without the fixed synth/deploy cost.

`python -m bench demo [--work DIR] [--json]`
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import parser as bench_parser

TARGET_RATIO = 1.5
_OFFLINE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "CDK_DISABLE_CLI_TELEMETRY": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def _offline() -> None:
    """Never reach AWS or the metadata address; never pick up a real profile."""
    for key, value in _OFFLINE_ENV.items():
        os.environ[key] = value
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


def demo_hyperparameters() -> dict[str, str]:
    """The user hyperparameters of the demo's training job: what the state machine sends
    (contract defaults, then the configuration's, as synthesized with the demo context)."""
    from core.config import TrainingConfig, load_cdk_json_context
    from training import contract
    from trainops.demo import DEMO_CONTEXT, REPO

    config = TrainingConfig.from_context(
        {**load_cdk_json_context(REPO / "cdk.json"), **DEMO_CONTEXT}
    )
    merged = {**contract.runner_defaults(), "config": config.config}
    merged.update({str(k): str(v) for k, v in config.hyperparameters.items()})
    return merged


def main(argv: list[str]) -> int:
    parser = bench_parser("demo", __doc__)
    parser.add_argument("--work", help="work folder (default: a new temp dir); emptied first")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    _offline()

    from training.tasks.digits.data import write_default_dataset
    from trainops.demo import DEMO_CONTEXT, run_demo
    from trainops.local_train import run_local_training

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    if args.work and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)

    quiet = (lambda _line: None) if args.json else print
    started = time.monotonic()
    demo = run_demo(work=work / "demo", echo=quiet, interval_s=0.5)
    demo_total = time.monotonic() - started
    if demo.run.status != "SUCCEEDED":
        print(f"demo failed: {demo.run.failure or demo.run.status}", file=sys.stderr)
        return 1

    hps = demo_hyperparameters()
    hosts = int(DEMO_CONTEXT["training.instance_count"])
    data = work / "local-data"
    write_default_dataset(data)
    local = run_local_training(
        hosts=hosts,
        processes_per_host=1,
        hyperparameters=hps,
        data_dir=data,
        root=work / "local",
        job_name="bench-local",
        echo=None,
    )
    if not local.ok:
        print(f"direct training failed: {local.failure}", file=sys.stderr)
        return 1

    workflow = demo.timings["workflow"]
    result = {
        "demo_total_s": round(demo_total, 2),
        "demo_stages_s": demo.timings,
        "demo_job_s": round(demo.run.seconds or 0.0, 2),
        "direct_training_s": round(local.seconds, 2),
        "hosts": hosts,
        "hyperparameters": hps,
        "val_acc": {
            "demo": demo.run.metrics.get("val_acc"),
            "direct": local.metrics.get("val_acc"),
        },
        "ratio_workflow_over_training": round(workflow / local.seconds, 2),
        "ratio_total_over_training": round(demo_total / local.seconds, 2),
        "target_ratio": TARGET_RATIO,
    }
    result["within_target"] = result["ratio_total_over_training"] <= TARGET_RATIO
    result["workflow_within_target"] = result["ratio_workflow_over_training"] <= TARGET_RATIO
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        stages = ", ".join(f"{k} {v:.1f}s" for k, v in demo.timings.items())
        print(f"demo end to end:        {demo_total:.1f}s ({stages})")
        print(f"direct training:        {local.seconds:.1f}s ({hosts} hosts x 1 process)")
        for label, key, ok in (
            ("end to end / training: ", "ratio_total_over_training", "within_target"),
            ("workflow / training:   ", "ratio_workflow_over_training", "workflow_within_target"),
        ):
            verdict = "ok" if result[ok] else "MISSED"
            print(f"{label} {result[key]:.2f} (target <= {TARGET_RATIO}: {verdict})")
        print(f"val_acc: demo {result['val_acc']['demo']}, direct {result['val_acc']['direct']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
