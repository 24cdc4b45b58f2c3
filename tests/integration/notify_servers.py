"""Real servers for the notifier tests: a Comet subscriber, aiosmtpd, an aiohttp receiver.

- :class:`CometSubscriber` runs ``twistd -n comet --remote=HOST:PORT --save-event`` (Comet
  from PyPI, a VTP client) as its own process; what it receives is one file per event.
- :class:`SmtpServer` is aiosmtpd's ``Controller`` (in this process, its own thread) with a
  handler that keeps every message it accepts, and can refuse on purpose
  (``451`` at DATA) or require STARTTLS and AUTH.
- A test CA (trustme) issues the certificates for STARTTLS and HTTPS.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class CometSubscriber:
    """``twistd comet`` subscribed to a VTP broadcaster; saves each event it receives."""

    def __init__(self, workdir: Path, host: str, port: int):
        self.workdir = workdir
        self.events = workdir / "events"
        self.events.mkdir(parents=True, exist_ok=True)
        (workdir / "eventdb").mkdir(exist_ok=True)
        self.log = workdir / "comet.log"
        self.command = [
            str(VENV_BIN / "twistd"),
            "-n",
            "--pidfile=",
            f"--logfile={self.log}",
            "comet",
            f"--remote={host}:{port}",
            "--local-ivo=ivo://test.example.org/comet",
            "--save-event",
            f"--save-event-directory={self.events}",
            f"--eventdb={workdir / 'eventdb'}",
            "--verbose",
        ]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=self.workdir, start_new_session=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)

    def received(self) -> list[Path]:
        return sorted(p for p in self.events.iterdir() if p.is_file())


class _Handler:
    def __init__(self) -> None:
        self.messages = []
        self.refuse = False
        self.logins = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return "451 4.3.0 refused on purpose, try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 keeping what it accepts (``messages``: (recipients, message))."""

    def __init__(self, tls_context=None, credentials=None):
        self.handler = _Handler()
        self.port = free_port()
        self.tls_context = tls_context
        self.credentials = credentials
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        if ok:
            self.handler.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    def start(self) -> None:
        kwargs = {}
        if self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        if self.credentials is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=True
            )
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages
