"""One sandboxed filter process and the line protocol, from the runner's side (asyncio).

:class:`FilterProcess` stages the code, starts bubblewrap (:mod:`.sandbox`), sends ``start``
and waits for ``hello``, then exchanges alerts for answers: up to ``window`` alerts are
written ahead of the answers (the pipe holds at most that many, so it is bounded), and each
answer must arrive within ``answer_timeout`` seconds of the previous one. Anything else is a
:class:`FilterFault` with a kind and a reason, after which the process is killed:

``start``      no valid ``hello`` in time;
``timeout``    no answer (or no room in the pipe) within the answer timeout;
``crash``      the process ended (exit status or signal, e.g. the CPU-time limit);
``protocol``   a frame too large, not JSON, out of order, or with an ungranted stream.

Standard error is read continuously into a bounded tail (:attr:`FilterProcess.log_tail`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import signal
import struct
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from brokerapp.runtime.userfilter.sandbox import (
    CgroupSet,
    SandboxPlan,
    Usage,
    bwrap_argv,
    make_preexec,
    read_usage,
    stage,
)
from brokerapp.userfilter.protocol import (
    MAX_FRAME,
    PROTOCOL_VERSION,
    FrameError,
    check_answer,
    check_hello,
    decode_frame_body,
)

__all__ = ["AlertItem", "FilterFault", "FilterProcess", "describe_exit"]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
_STDERR_LINE = 500


@dataclass
class AlertItem:
    """One alert to offer a filter, with where it came from.

    Attributes
    ----------
    topic, partition, offset
        Its Kafka position (informational for the filter).
    record : dict or None
        The decoded alert (needed by ``"json"`` filters).
    body : bytes or None
        The bare Avro body (needed by ``"avro"`` filters).
    schema_id : int
        Its writer schema's ID.
    schema : object
        Its writer schema as JSON (sent once per ID per process).
    """

    topic: str = ""
    partition: int = -1
    offset: int = -1
    record: dict | None = None
    body: bytes | None = None
    schema_id: int = 0
    schema: Any = None


class FilterFault(Exception):  # noqa: N818 - a fault of the filter, not of the runner
    """The filter process broke the protocol or its limits; it has been killed.

    Parameters
    ----------
    kind : str
        ``start``, ``timeout``, ``crash`` or ``protocol``.
    reason : str
        What happened, for the status and log.
    answered : list of dict
        Answers received in the failed exchange before the fault (in order).
    """

    def __init__(self, kind: str, reason: str, answered: list[dict] | None = None):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.answered = answered or []


_SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU-time limit reached (SIGXCPU)",
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGSEGV: "segmentation fault (SIGSEGV)",
    signal.SIGXFSZ: "file-size limit reached (SIGXFSZ)",
}


def describe_exit(returncode: int | None) -> str:
    """Explain an exit status of bwrap (which returns ``128 + N`` for a filter killed by N).

    Parameters
    ----------
    returncode : int or None
        From :attr:`asyncio.subprocess.Process.returncode`.

    Returns
    -------
    str
        E.g. ``"exited with status 3"`` or ``"CPU-time limit reached (SIGXCPU)"``.
    """
    if returncode is None:
        return "still running"
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if number:
        try:
            sig = signal.Signals(number)
        except ValueError:
            return f"exited with status {returncode}"
        return _SIGNAL_REASONS.get(sig, f"killed by {sig.name}")
    return f"exited with status {returncode}"


def _bytes_as_base64(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _frame(message: dict[str, Any]) -> bytes:
    body = orjson.dumps(message, default=_bytes_as_base64)
    return _LENGTH.pack(len(body)) + body


class FilterProcess:
    """One run of a filter in its sandbox.

    Parameters
    ----------
    name : str
        The filter's name (sent in ``start``; also names its cgroups).
    plan : SandboxPlan
        Command, code and limits.
    uid : int
        The sandbox's uid.
    streams : frozenset of str
        Output streams the filter may emit to.
    params : dict
        Parameters sent in ``start``.
    answer_timeout : float
        Seconds allowed per answer (and to make room in the pipe).
    start_timeout : float
        Seconds allowed for ``hello``.
    window : int
        Alerts written ahead of their answers.
    use_cgroups : bool
        Make ``pids``/``cpu`` cgroups where writable.
    staging_parent : Path, optional
        Where staging folders go.
    """

    def __init__(
        self,
        name: str,
        plan: SandboxPlan,
        uid: int,
        streams: frozenset[str] = frozenset(),
        params: dict | None = None,
        answer_timeout: float = 5.0,
        start_timeout: float = 10.0,
        window: int = 16,
        use_cgroups: bool = True,
        staging_parent: Path | None = None,
    ):
        self.name = name
        self.plan = plan
        self.uid = uid
        self.streams = streams
        self.params = params or {}
        self.answer_timeout = answer_timeout
        self.start_timeout = start_timeout
        self.window = max(1, window)
        self.use_cgroups = use_cgroups
        self.staging_parent = staging_parent
        self.encoding = "json"
        self.log_tail: deque[str] = deque(maxlen=50)
        self.cgroups: CgroupSet | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._staged: Path | None = None
        self._stderr_task: asyncio.Task | None = None
        self._schemas_sent: set[int] = set()
        self._next_id = 0
        self._final_usage: Usage | None = None
        self._final_throttled: float | None = None

    def usage(self) -> Usage:
        """CPU and peak RSS of the sandbox now, or as they were just before it was ended."""
        if self._final_usage is not None:
            return self._final_usage
        return read_usage(self.uid)

    def throttled_ms(self) -> float:
        """Time the CPU quota throttled the sandbox, in ms (0 without a ``cpu`` cgroup)."""
        if self._final_throttled is not None:
            return self._final_throttled
        if self.cgroups is None:
            return 0.0
        return self.cgroups.throttled_ms() or 0.0

    @property
    def pid(self) -> int | None:
        """Pid of the bwrap process (None before start)."""
        return None if self._proc is None else self._proc.pid

    async def start(self) -> str:
        """Start the sandbox and complete the handshake.

        Returns
        -------
        str
            The input encoding the filter asked for.

        Raises
        ------
        FilterFault
            ``start`` if the process cannot start or gives no valid ``hello`` in time.
        """
        if os.geteuid() != 0:
            # Each sandbox needs a uid of its own: its usage, RLIMIT_NPROC and the final
            # SIGKILL of every process of that uid would otherwise hit the runner itself.
            raise FilterFault("start", "the runner must run as root to give sandboxes own uids")
        self._staged = await asyncio.to_thread(
            stage, self.plan.code_dir, self.staging_parent, self.uid
        )
        if self.use_cgroups:
            self.cgroups = CgroupSet(f"{self.name}-{self.uid}", self.plan.limits)
        procs = self.cgroups.procs_files() if self.cgroups else []
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *bwrap_argv(self.plan, self._staged),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=make_preexec(self.uid, self.plan.limits, procs),
                limit=MAX_FRAME + 4,
                env={},
            )
        except (OSError, subprocess.SubprocessError) as exc:  # preexec errors are the latter
            await self.close()
            raise FilterFault("start", f"cannot start the sandbox: {exc}") from None
        self._stderr_task = asyncio.create_task(self._read_stderr())
        start = {
            "type": "start",
            "protocol": PROTOCOL_VERSION,
            "filter": self.name,
            "params": self.params,
            "streams": sorted(self.streams),
        }
        try:
            await self._write(_frame(start), self.start_timeout)
            hello = await self._read(self.start_timeout)
            self.encoding = check_hello(hello)
        except FilterFault as fault:
            await self.close()
            raise FilterFault("start", fault.reason) from None
        except FrameError as exc:
            await self.close()
            raise FilterFault("start", str(exc)) from None
        return self.encoding

    def _message(self, item: AlertItem) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {
            "type": "alert",
            "id": self._next_id,
            "topic": item.topic,
            "partition": item.partition,
            "offset": item.offset,
        }
        if self.encoding == "json":
            message["alert"] = item.record
        else:
            message["schema_id"] = item.schema_id
            if item.schema_id not in self._schemas_sent:
                message["schema"] = item.schema
                self._schemas_sent.add(item.schema_id)
            message["avro"] = base64.b64encode(item.body or b"").decode()
        return message

    async def exchange(self, items: list[AlertItem]) -> list[dict]:
        """Offer ``items`` in order and return one checked answer per item.

        Parameters
        ----------
        items : list of AlertItem
            The alerts.

        Returns
        -------
        list of dict
            Answers as :func:`~brokerapp.userfilter.protocol.check_answer` returns them.

        Raises
        ------
        FilterFault
            On a timeout, a crash or a protocol error; the process is killed first, and the
            answers received before the fault are in :attr:`FilterFault.answered`.
        """
        answers: list[dict] = []
        ids: list[int] = []
        sent = 0
        try:
            while len(answers) < len(items):
                chunk = bytearray()
                while sent < len(items) and sent - len(answers) < self.window:
                    message = self._message(items[sent])
                    ids.append(message["id"])
                    chunk += _frame(message)
                    sent += 1
                if chunk:
                    await self._write(bytes(chunk), self.answer_timeout)
                message = await self._read(self.answer_timeout)
                answers.append(check_answer(message, ids[len(answers)], self.streams))
        except FrameError as exc:
            await self.close()
            raise FilterFault("protocol", str(exc), answers) from None
        except FilterFault as fault:
            reason = fault.reason + self._limit_hint()
            await self.close()
            raise FilterFault(fault.kind, reason, answers) from None
        return answers

    def _limit_hint(self) -> str:
        """Say which limit held the sandbox back, if one did (appended to a fault's reason)."""
        hints = []
        processes = self.usage().processes
        if processes >= self.plan.limits.processes:
            hints.append(f"at its process limit ({processes} processes)")
        throttled = self.throttled_ms()
        if throttled >= 100:
            hints.append(f"throttled by its CPU quota for {throttled:.0f} ms")
        return f" ({'; '.join(hints)})" if hints else ""

    async def _write(self, data: bytes, timeout: float) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(data)
            await asyncio.wait_for(self._proc.stdin.drain(), timeout)
        except TimeoutError:
            raise FilterFault("timeout", f"did not read its input within {timeout:g} s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise FilterFault("crash", await self._exit_reason()) from None

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            head = await asyncio.wait_for(stdout.readexactly(4), timeout)
            (length,) = _LENGTH.unpack(head)
            if length > MAX_FRAME:
                raise FrameError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
            body = await asyncio.wait_for(stdout.readexactly(length), timeout)
        except TimeoutError:
            raise FilterFault("timeout", f"no answer within {timeout:g} s") from None
        except asyncio.IncompleteReadError:
            raise FilterFault("crash", await self._exit_reason()) from None
        return decode_frame_body(body)

    async def _exit_reason(self) -> str:
        assert self._proc is not None
        try:
            await asyncio.wait_for(self._proc.wait(), 2.0)
        except TimeoutError:
            return "closed its output but kept running"
        return describe_exit(self._proc.returncode)

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        stderr = self._proc.stderr
        partial = b""
        while True:
            chunk = await stderr.read(4096)
            if not chunk:
                break
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()[:_STDERR_LINE]
            for line in lines:
                self.log_tail.append(line[:_STDERR_LINE].decode("utf-8", "replace"))
        if partial:
            self.log_tail.append(partial.decode("utf-8", "replace"))

    @property
    def returncode(self) -> int | None:
        """Exit status of bwrap, None while it runs."""
        return None if self._proc is None else self._proc.returncode

    async def close(self, grace: float = 0.0) -> None:
        """End the process (closing its input first, then SIGKILL) and clean up.

        Parameters
        ----------
        grace : float
            Seconds to wait for a clean exit after closing standard input.
        """
        proc = self._proc
        if proc is not None and self._final_usage is None:
            self._final_usage = read_usage(self.uid)
            self._final_throttled = self.throttled_ms()
        if proc is not None:
            if proc.stdin is not None and grace > 0:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), grace)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            await _kill_all(self.uid)
        if self._stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 2.0)
        if self.cgroups is not None:
            await _wait_empty(self.cgroups)
            self.cgroups.remove()
        if self._staged is not None:
            await asyncio.to_thread(shutil.rmtree, self._staged, True)
            self._staged = None


async def _kill_all(uid: int, attempts: int = 100) -> None:
    """SIGKILL every process left with the sandbox's uid and wait until none is left.

    Killing bwrap tears down the PID namespace, but its processes go asynchronously; a
    restarted sandbox must not find (and count) them.
    """
    for _ in range(attempts):
        pids = _pids_of(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.05)
    log.warning("processes of sandbox uid %d still present after SIGKILL", uid)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
    return pids


async def _wait_empty(cgroups: CgroupSet, attempts: int = 50) -> None:
    """Wait until the sandbox's cgroups hold no process (the PID namespace is torn down)."""
    for _ in range(attempts):
        busy = False
        for path in cgroups.procs_files():
            with contextlib.suppress(OSError):
                if Path(path).read_text().strip():
                    busy = True
        if not busy:
            return
        await asyncio.sleep(0.05)
