"""Run branch workers as a user does, ``faust -A agents.<branch> worker``, in a test.

Every test gets its own names (app prefix, topic prefix, upstream topic prefix, local
topics, consumer groups, data folder and web port) through ``BROKER_`` variables, so tests
never see each other's topics or committed offsets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WorkerRun:
    """Names and environment of one test's worker of one branch."""

    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    runs: int = 0
    module: str = "agents.gateway"
    path: str = "gateway"
    port_setting: str = "BROKER_GATEWAY_WEB_PORT"
    command: list[str] | None = None

    @property
    def alerts(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}-deadletter"

    def ztf_topic(self, date: str) -> str:
        return f"ztf_{date}_programid1_{self.prefix}"

    def lsst_topic(self, date: str) -> str:
        return f"lsst-alerts-{self.prefix}-{date}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "BROKER_APP_PREFIX": self.prefix,
                "BROKER_ALERTS_TOPIC": self.alerts,
                "BROKER_ALERTS_PARTITIONS": "4",
                "BROKER_GATEWAY_DEADLETTER_TOPIC": self.deadletter,
                "BROKER_GATEWAY_GROUP": f"brokerapp-{self.prefix}-gateway",
                "BROKER_GATEWAY_TOPIC_PATTERNS": json.dumps(
                    [rf"^ztf_\d{{8}}_programid1_{self.prefix}$", rf"^lsst-alerts-{self.prefix}-.*$"]
                ),
                "BROKER_GATEWAY_METADATA_MAX_AGE_MS": "2000",
                self.port_setting: str(self.port),
                "BROKER_STATE_DIR": str(self.workdir / "state"),
                "BROKER_TOPIC_PREFIX": f"{self.prefix}-",
            }
        )
        env.update(self.env_overrides)
        return env

    def start(self, **overrides: str) -> None:
        assert self.process is None or self.process.poll() is not None
        self.runs += 1
        env = self.env()
        env.update(overrides)
        log = open(self.workdir / f"{self.path}-{self.runs}.log", "wb")  # noqa: SIM115
        default = [sys.executable, "-m", "faust", "-A", self.module, "worker", "-l", "info"]
        self.process = subprocess.Popen(
            self.command or default,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.wait_status(self.ready, timeout=90, what=f"{self.module} to run")

    @staticmethod
    def ready(status: dict) -> bool:
        return status.get("running", True)

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-4000:]
            for path in sorted(self.workdir.glob(f"{self.path}-*.log"))
        )

    def status(self) -> dict:
        url = f"http://127.0.0.1:{self.port}/{self.path}/status.json"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    def page(self) -> str:
        url = f"http://127.0.0.1:{self.port}/{self.path}/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def wait_status(self, predicate, timeout: float = 60, what: str = "the worker") -> dict:
        deadline = time.monotonic() + timeout
        last: dict | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"{self.path} exited ({code}):\n{self.log()}")
            try:
                last = self.status()
            except OSError:
                last = None
            if last is not None and predicate(last):
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}; last status {last}\n{self.log()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


GatewayRun = WorkerRun
