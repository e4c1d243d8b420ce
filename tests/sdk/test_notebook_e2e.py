"""The notebook path end to end: `python -m trainops emulator` as a server, real clients.

The example notebook runs top to bottom through nbclient (SDK 3.x, this venv's kernel) and a
notebook-style SDK 2.x script runs in its own venv; each starts a 2-host job that must complete
with one model. Both clients run with an audit hook that refuses any host but 127.0.0.1
(telemetry, metadata, real AWS), so "offline" is checked, not assumed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests import timing
from trainops.demo import REPO
from trainops.sdk import SdkError, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(timing.bound(1200))]

NOTEBOOK = REPO / "examples" / "train_from_notebook.ipynb"
SDK2_PYTHON = REPO / ".venv-sdk2" / "bin" / "python"
LOOPBACK_ONLY = REPO / "tests" / "fixtures" / "loopback_only"
SDK2_SCRIPT = """
import os, boto3
from trainops.sdk import Stack
stack = Stack(endpoint_url=os.environ["TRAINOPS_ENDPOINT_URL"])
estimator = stack.pytorch_estimator(instance_count=2, hyperparameters={"epochs": 2})
estimator.fit(stack.inputs(), wait=True, logs="None")
job = boto3.client("sagemaker", region_name=stack.region).describe_training_job(
    TrainingJobName=estimator.job_name)
print(job["TrainingJobStatus"], job["ResourceConfig"]["InstanceCount"])
print(job["ModelArtifacts"]["S3ModelArtifacts"])
"""


class Server:
    """A running `trainops emulator`: its endpoint and outputs, read from its --json line."""

    def __init__(self, work: Path, *extra: str) -> None:
        self.log = (work / "emulator.log").open("w")
        folder = str(work / "emulator")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trainops",
                "emulator",
                "--port",
                "0",
                "--json",
                "--work",
                folder,
                *extra,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(x) for x in self.process.stdout], daemon=True
        ).start()
        seen: list[str] = []

        def ready() -> bool | None:
            while not lines.empty():
                seen.append(lines.get().strip())
            if self.process.poll() is not None:
                raise AssertionError(f"emulator exited {self.process.returncode}: {seen}")
            return True if "ready" in seen else None

        timing.wait_until(ready, 300, "the emulator's `ready` line")
        summary = json.loads(seen[seen.index("ready") - 1])
        self.endpoint_url: str = summary["endpoint_url"]
        self.outputs: dict[str, str] = summary["outputs"]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timing.bound(60))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return -9
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("emulator"))
    yield running
    assert running.stop() == 0, "the emulator must shut down cleanly on Ctrl-C"


def client_env(server: Server, net_log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update(
        TRAINOPS_ENDPOINT_URL=server.endpoint_url,
        TRAINOPS_NET_LOG=str(net_log),
        PYTHONPATH=os.pathsep.join([str(LOOPBACK_ONLY), str(REPO)]),
    )
    return env


def test_example_notebook_trains_two_hosts_against_the_emulator(
    server: Server, tmp_path: Path
) -> None:
    net_log = tmp_path / "net.log"
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=int(timing.bound(600)),
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=client_env(server, net_log))
    nbformat.write(notebook, tmp_path / "executed.ipynb")  # to refresh the committed outputs

    text = "\n".join(
        out.get("text", "") + json.dumps(out.get("data", {}))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )
    assert "Completed" in text
    assert "model.pt" in text and "model.json" in text
    assert re.search(r"\n2 \['[^']+', '[^']+'\]", text), "world size 2 on two hosts"
    assert not net_log.exists(), f"non-loopback traffic: {net_log.read_text()}"


@pytest.mark.skipif(not SDK2_PYTHON.exists(), reason="`make .venv-sdk2` (make test does)")
def test_sdk2_estimator_trains_two_hosts_against_the_emulator(
    server: Server, tmp_path: Path
) -> None:
    net_log = tmp_path / "net.log"
    done = subprocess.run(
        [str(SDK2_PYTHON), "-c", SDK2_SCRIPT],
        env=client_env(server, net_log),
        capture_output=True,
        text=True,
        timeout=timing.bound(600),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    status, model = done.stdout.strip().splitlines()[-2:]
    assert status == "Completed 2"
    assert model.endswith("/output/model.tar.gz")
    assert not net_log.exists(), f"non-loopback traffic: {net_log.read_text()}"


# --- bad input: one line each ----------------------------------------------------------------
@pytest.fixture
def sdk_stack(server: Server, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)  # restored after the test
    return Stack(endpoint_url=server.endpoint_url)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instance_cuont": 2}, "unknown override 'instance_cuont': the stack's runs take"),
        ({"instance_count": 0}, "instance_count"),
        ({"instance_type": "p4d.24xlarge"}, "p4d.24xlarge"),
        ({"hyperparameters": {"epochz": "2"}}, "hyperparameter epochz=2: the training script"),
        ({"hyperparameters": {"precision": "fp8"}}, "precision"),
        ({"hyperparameters": {"epochs": ["2"]}}, "epochs"),
    ],
)
def test_bad_overrides_fail_in_one_line_before_any_job(
    sdk_stack: Stack, overrides: dict, message: str
) -> None:
    with pytest.raises(SdkError) as raised:
        sdk_stack.model_trainer(**overrides)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_stack_and_missing_emulator_name_the_fix(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint_url)
    with pytest.raises(
        SdkError,
        match=r"stack 'Nope' not found \(emulator http://127\.0\.0\.1:\d+, region us-east-1\): "
        r"deploy it with `npx cdk deploy`",
    ):
        Stack("Nope", endpoint_url=server.endpoint_url)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        free = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(
        SdkError, match=r"cannot reach .* no emulator answers there; .*python -m trainops emulator"
    ):
        Stack(endpoint_url=free)


def test_the_other_sdk_major_is_named_with_its_install(sdk_stack: Stack) -> None:
    with pytest.raises(SdkError) as raised:
        sdk_stack.pytorch_estimator(instance_count=2)
    assert "SDK 2.x is not installed here (SDK 3.x is installed here" in str(raised.value)
    assert "pip install 'sagemaker==2.257.7'" in str(raised.value)
