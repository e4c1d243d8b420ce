"""Run one training job on this machine exactly as SageMaker runs it, through the real toolkit.

Each simulated host gets its own SageMaker-style folder (localjob/hosts.py) and its own `train`
process: the console script of `sagemaker-training`, with `SAGEMAKER_TRAINING_MODULE` naming
the PyTorch DLC's entry point, as inside the real container. The toolkit downloads and unpacks
the code bundle, installs its requirements, and launches the entry script with torchrun (N hosts
x M processes, gloo on CPU) or as one plain process. Nothing here imitates the toolkit.

Like the real container, a host runs in an environment standing in for the image
(localjob/image_standin.py: torch and the toolkits, no Lightning), so the bundle's requirements
must install from the bundle; an isolated job (`network_isolation`) runs all its hosts in one
private network namespace (localjob/netns.py) where only the peers are reachable. Paths under
/opt/ml in hyperparameters name the host's SageMaker folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.wheelhouse import clean_pip_env
from localjob.checkpoint_sync import CheckpointStore, CheckpointSync
from localjob.failure_reason import has_details, summarize_failure
from localjob.hosts import HostRun, host_names, lay_out
from localjob.image_standin import image_standin
from localjob.launcher import rehearsed
from localjob.netns import PrivateNetwork
from localjob.process_groups import PortLock, group_alive, signal_group
from training import contract

#: The PyTorch DLC's `SAGEMAKER_TRAINING_MODULE`: what its `train` entry point runs.
DLC_TRAINING_MODULE = "sagemaker_pytorch_container.training:main"
#: Env var naming the script's checkpoint dir (on SageMaker: /opt/ml/checkpoints).
CHECKPOINT_DIR_ENV = "TRAINING_CHECKPOINT_DIR"
#: What a job's processes see as PATH beside the host's own bin (the image's system tools).
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_STOP_GRACE_S = 10.0
#: StopTrainingJob (and MaxRuntimeInSeconds) on SageMaker: SIGTERM to the container, SIGKILL 120 s
#: later. In the PyTorch DLCs the container's PID 1 is `bash -m start_with_right_hostname.sh`,
#: a shell with no SIGTERM handler, and the kernel drops such signals for a namespace's init: no
#: process of the job sees one (sources: README, "Stalls, stops and lost instances").
SAGEMAKER_STOP_GRACE_S = 120.0
#: The emulator's stop grace in seconds (default SAGEMAKER_STOP_GRACE_S); tests shorten it.
STOP_GRACE_ENV = "TRAINOPS_STOP_GRACE_S"
#: Set per host by the toolkit or the launcher: never inherited from the machine.
_LAUNCHER_VARS = ("SM_", "SAGEMAKER_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_")
#: When a host has failed, the job is lost: the survivors' torchrun waits at its exit barrier
#: for the dead host and ignores SIGTERM, so a long grace only delays the failure.
FAILED_PEER_GRACE_S = 2.0


@dataclass(frozen=True)
class LocalJobSpec:
    """What CreateTrainingJob says, resolved to local paths."""

    job_name: str
    hyperparameters: Mapping[str, str]  # as sent to SageMaker, sagemaker_* keys included
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    channels: Mapping[str, Path] = field(default_factory=dict)  # channel -> local data folder
    environment: Mapping[str, str] = field(default_factory=dict)
    checkpoint_store: CheckpointStore | None = None  # CheckpointConfig.S3Uri
    input_mode: str = "File"
    image_family: str = "current"  # which training image the hosts stand in for
    network_isolation: bool = False  # EnableNetworkIsolation: only peers are reachable


class LocalTrainingJob:
    """Lay out, launch, watch and stop the hosts of one local training job."""

    def __init__(
        self, spec: LocalJobSpec, root: Path, *, echo: Callable[[str], None] | None = None
    ):
        self.spec = spec
        self.root = root
        self.echo = echo
        #: What the hosts get: the request's, with SMDDP's launcher swapped (localjob/launcher).
        self.hyperparameters, self._launcher_note = rehearsed(spec.hyperparameters)
        self.hosts = [
            HostRun(name, root / "hosts" / f"algo-{i}")
            for i, name in enumerate(host_names(spec.instance_count), start=1)
        ]
        self._syncer: CheckpointSync | None = None
        self._lock: PortLock | None = None
        self._network: PrivateNetwork | None = None
        self._finish_lock = threading.Lock()
        self._tails: list[threading.Thread] = []
        self.started_at: float | None = None
        self.ended_at: float | None = None

    # --- layout ----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Write each host's SageMaker folder: config, replicated data, restored checkpoints."""
        names = [h.name for h in self.hosts]
        for host in self.hosts:
            lay_out(
                host,
                names,
                instance_type=self.spec.instance_type,
                input_mode=self.spec.input_mode,
                channels=self.spec.channels,
                hyperparameters=self.hyperparameters,
            )
            if self.spec.checkpoint_store is not None:
                self.spec.checkpoint_store.restore(host.checkpoint_dir)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start every host's `train` process (non-blocking).

        torchrun's rendezvous port is fixed by the toolkit (7777). An isolated job has its own
        network namespace, hence its own ports; other distributed jobs share this machine's and
        take a machine-wide lock, so a second one waits its turn instead of dying with
        EADDRINUSE.
        """
        try:
            self._launch()
        except BaseException:
            self._release()  # a job that could not start holds no lock and no namespace
            for host in self.hosts:
                signal_group(host.process, signal.SIGKILL)
            raise
        if self.spec.checkpoint_store is not None:
            self._syncer = CheckpointSync(
                [h.checkpoint_dir for h in self.hosts], self.spec.checkpoint_store
            )
            self._syncer.start()

    def _launch(self) -> None:
        """Take the network (namespace or port lock), lay out the hosts, start their processes."""
        if self.spec.network_isolation:
            self._network = PrivateNetwork()
        elif self.hyperparameters.get(contract.LAUNCHER_FLAGS["torchrun"]) == "true":
            self._lock = PortLock()
        if self._launcher_note and self.echo is not None:
            self.echo(f"[local-job] {self.spec.job_name}: {self._launcher_note}")
        self.prepare()
        standin = image_standin(self.spec.image_family)
        self.started_at = time.time()
        for host in self.hosts:
            bindir = standin.host_env(self.root / "envs" / host.base_dir.name)
            env = self._host_env(host, bindir)
            host.log_path = self.root / "logs" / f"{host.base_dir.name}.log"
            host.log_path.parent.mkdir(parents=True, exist_ok=True)
            command = [str(bindir / "train")]
            if self._network is not None:
                command = self._network.command(command)
            host.process = subprocess.Popen(
                command,
                env=env,
                cwd=host.base_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # One process group per host: stop/kill also reaches torchrun's children.
                start_new_session=True,
            )
            tail = threading.Thread(target=self._pump, args=(host,), daemon=True)
            tail.start()
            self._tails.append(tail)

    def _host_env(self, host: HostRun, bindir: Path) -> dict[str, str]:
        # Nothing of this machine's Python setup reaches the "image" (clean_pip_env).
        env = {
            k: v for k, v in clean_pip_env(os.environ).items() if not k.startswith(_LAUNCHER_VARS)
        }
        env.update(self.spec.environment)
        env.update(
            {
                contract.BASE_DIR_ENV: str(host.base_dir),
                "SAGEMAKER_TRAINING_MODULE": DLC_TRAINING_MODULE,
                "TRAINING_JOB_NAME": self.spec.job_name,
                CHECKPOINT_DIR_ENV: str(host.checkpoint_dir),
                "AWS_EC2_METADATA_DISABLED": "true",
                "GLOO_SOCKET_IFNAME": "lo",
                "PYTHONUNBUFFERED": "1",
                "PATH": os.pathsep.join([str(bindir), _SYSTEM_PATH]),
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
            }
        )
        return env

    def _pump(self, host: HostRun) -> None:
        assert host.process is not None and host.process.stdout is not None
        assert host.log_path is not None
        with host.log_path.open("wb") as log:
            for raw in iter(host.process.stdout.readline, b""):
                log.write(raw)
                log.flush()
                if self.echo is not None:
                    self.echo(f"[{host.base_dir.name}] {raw.decode(errors='replace').rstrip()}")

    def poll(self) -> list[int | None]:
        """Exit code of each host's process (None while it runs)."""
        return [h.process.poll() if h.process else None for h in self.hosts]

    @property
    def running(self) -> bool:
        return any(code is None for code in self.poll())

    def wait(self, timeout_s: float | None = None) -> list[int]:
        """Block until every host exits (a failed host stops the others, as SageMaker does)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.running:
            codes = self.poll()
            if any(c not in (None, 0) for c in codes):
                self.stop(reason="another host failed", grace_s=FAILED_PEER_GRACE_S)
                break
            if deadline is not None and time.monotonic() > deadline:
                self.stop(reason=f"exceeded {timeout_s:.0f}s")
                break
            time.sleep(0.2)
        return self._finish()

    def stop(
        self,
        *,
        reason: str = "stopped",
        sig: int | None = signal.SIGTERM,
        grace_s: float = _STOP_GRACE_S,
    ) -> None:
        """Signal every host's process group (no signal: `sig=None`); SIGKILL whatever
        outlives the grace period."""
        for host in self.hosts:
            if sig is not None:
                signal_group(host.process, sig)
        deadline = time.monotonic() + grace_s
        while any(group_alive(h.process) for h in self.hosts) and time.monotonic() < deadline:
            time.sleep(0.1)
        for host in self.hosts:
            signal_group(host.process, signal.SIGKILL)
        if self.echo is not None:
            self.echo(f"[local-job] {self.spec.job_name}: {reason}")

    def stop_like_sagemaker(self, *, reason: str, grace_s: float) -> None:
        """What a stop delivers inside a PyTorch DLC: SIGTERM to PID 1, which no process of
        the job receives, so the job runs on until the SIGKILL `grace_s` later."""
        self.stop(reason=reason, sig=None, grace_s=grace_s)

    def kill(self) -> None:
        """SIGKILL every process at once (what a spot reclaim looks like from inside)."""
        for host in self.hosts:
            signal_group(host.process, signal.SIGKILL)
        self._finish()

    def _finish(self) -> list[int]:
        """Reap every host, stop syncing, release the port lock. Idempotent and thread-safe:
        a fault injector may kill the job while its supervisor is finishing it."""
        with self._finish_lock:
            codes = []
            for host in self.hosts:
                assert host.process is not None
                codes.append(host.process.wait())
                signal_group(host.process, signal.SIGKILL)  # no straggler outlives its job
            for tail in self._tails:
                tail.join(timeout=5)
            if self._syncer is not None:
                self._syncer.stop()
            self._release()
            self.ended_at = self.ended_at or time.time()
            return codes

    def _release(self) -> None:
        """Give back the machine-wide port lock and the private network, once."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._network is not None:
            self._network.close()
            self._network = None

    # --- results ---------------------------------------------------------------------------
    def model_files(self) -> list[Path]:
        """Every file any host wrote to its model dir (a correct job: exactly one host did)."""
        return sorted(p for h in self.hosts for p in h.model_dir.rglob("*") if p.is_file())

    def failure_reason(self) -> str | None:
        """The failure, named by host: a host's own failure (toolkit message) before the hosts
        that were only stopped because of it."""
        failed = [
            (h, c) for h, c in zip(self.hosts, self.poll(), strict=True) if c not in (None, 0)
        ]
        failed.sort(
            key=lambda hc: (
                hc[0].failure_reason() is None,
                contract.PEER_LOST_MARKER in (hc[0].failure_reason() or ""),  # a consequence
                hc[1] < 0,
            )
        )
        for host, code in failed:
            reason = host.failure_reason() or f"exit code {code}"
            summary = summarize_failure(reason)
            if summary.startswith(("ExitCode ", 'Command "', "exit code ")) and host.log_path:
                # The toolkit captured no stderr (ErrorMessage ""): torchrun's root-cause block
                # and the script's error line are still in the host's log.
                with contextlib.suppress(OSError):
                    tail = host.log_path.read_text(errors="replace")[-16384:]
                    summary = summarize_failure(tail) if has_details(tail) else summary
            return f"{host.base_dir.name} ({host.name}): {summary}"
        return None

    def log_lines(self) -> list[str]:
        """All host logs, host-tagged, for metric parsing and diagnostics."""
        lines = []
        for host in self.hosts:
            if host.log_path and host.log_path.exists():
                text = host.log_path.read_text(errors="replace")
                lines += [f"[{host.base_dir.name}] {line}" for line in text.splitlines()]
        return lines

    def metrics(self) -> dict[str, float]:
        """Latest value of each metric printed by the script (contract metric lines)."""
        latest: dict[str, float] = {}
        for line in self.log_lines():
            _, _, rest = line.partition("] ")
            latest.update(contract.parse_metric_line(rest))
        return latest
