"""Process supervision: start services detached, track them by pid file, stop them.

Each service runs in its own session (process group), detached from the caller, with its
output appended to ``<home>/log/<name>.log`` and its pid in ``<home>/run/<name>.pid``. A
service counts as running while its pid file names a live, non-zombie process; stopping
sends SIGTERM to the whole group and SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from brokerapp.tools.services.probes import port_open

__all__ = [
    "POLL_SECONDS",
    "STOP_GRACE_SECONDS",
    "Service",
    "ServiceError",
    "ServiceState",
    "Supervisor",
]

#: Seconds a service gets to stop on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 60.0
#: Seconds between readiness probes while waiting for a service.
POLL_SECONDS = 0.5


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped; the message says why."""


@dataclass
class Service:
    """One server process managed by :class:`Supervisor`.

    Parameters
    ----------
    name : str
        Stable name, used for the pid and log files (e.g. ``kafka-local-1``).
    kind : str
        ``kafka``, ``registry``, ``mariadb`` or ``cassandra``.
    port : int
        The port clients use; readiness is probed there.
    command : list of str
        The full command line.
    cwd : Path
        Working directory of the process.
    ready : callable
        Returns True once the service answers its clients.
    """

    name: str
    kind: str
    port: int
    command: list[str]
    cwd: Path
    ready: Callable[[], bool] = field(repr=False)


@dataclass(frozen=True)
class ServiceState:
    """What ``services status`` reports for one service."""

    name: str
    pid: int | None
    running: bool
    answering: bool
    port: int

    def line(self) -> str:
        """Return a one-line human-readable status."""
        state = "up" if self.answering else ("starting" if self.running else "down")
        pid = self.pid if self.running else "-"
        return f"{self.name:<22} {state:<9} port {self.port:<6} pid {pid}"


class Supervisor:
    """Start, wait for, stop and find the processes of one services home.

    Parameters
    ----------
    run_dir : Path
        Folder of the pid files.
    log_dir : Path
        Folder of the log files.
    startup_timeout : float
        Seconds :meth:`wait_ready` waits for a service to answer.
    """

    def __init__(self, run_dir: Path, log_dir: Path, startup_timeout: float):
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.startup_timeout = startup_timeout

    def start(self, service: Service) -> None:
        """Start a service in its own session unless it already runs.

        Parameters
        ----------
        service : Service
            What to start.

        Raises
        ------
        ServiceError
            If its port is taken by a process this home did not start.
        """
        if self.pid(service.name) is not None:
            return
        if port_open(service.port):
            raise ServiceError(
                f"port {service.port} of {service.name} is taken by a process this home "
                "did not start; stop it or choose other ports in the settings"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{service.name}.log", "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                service.command,
                cwd=service.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pid_file(service.name).write_text(str(proc.pid))

    def wait_ready(self, services: list[Service]) -> None:
        """Wait until every service answers, or raise with the tail of its log.

        Parameters
        ----------
        services : list of Service
            Started services.

        Raises
        ------
        ServiceError
            When a service dies or does not answer within ``startup_timeout``.
        """
        deadline = time.monotonic() + self.startup_timeout
        pending = list(services)
        while pending:
            for service in list(pending):
                if self.pid(service.name) is None:
                    raise ServiceError(f"{service.name} exited:\n{self.log_tail(service.name)}")
                if service.ready():
                    pending.remove(service)
            if pending and time.monotonic() > deadline:
                names = ", ".join(s.name for s in pending)
                raise ServiceError(
                    f"{names} did not answer within {self.startup_timeout:.0f} s:\n"
                    + self.log_tail(pending[0].name)
                )
            if pending:
                time.sleep(POLL_SECONDS)

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = STOP_GRACE_SECONDS) -> bool:
        """Stop one service; kill it if it outlives the grace period.

        Parameters
        ----------
        name : str
            Service name.
        sig : int
            First signal to send (``SIGKILL`` for crash tests).
        grace : float
            Seconds to wait before ``SIGKILL``.

        Returns
        -------
        bool
            True if a running process was stopped.
        """
        pid = self.pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return False
        _signal_group(pid, sig)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def known_names(self) -> list[str]:
        """Return the names of services with a pid file in this home."""
        if not self.run_dir.exists():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def pid(self, name: str) -> int | None:
        """Return the pid of a running service, or None."""
        pid_file = self._pid_file(name)
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        return pid if _alive(pid) else None

    def log_tail(self, name: str, lines: int = 30) -> str:
        """Return the last lines of a service's log."""
        log = self.log_dir / f"{name}.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"


def _alive(pid: int) -> bool:
    """Return whether ``pid`` is a live process (reaping it if it is our exited child)."""
    try:
        waited, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0
    if waited == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().split(") ", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def _signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group of ``pid`` (or to ``pid`` alone if not permitted)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)
