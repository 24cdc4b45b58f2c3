"""Supervision of one sandboxed filter: restarts with backoff, a give-up limit, and status.

:class:`FilterSupervisor` owns at most one :class:`~.process.FilterProcess` at a time and
turns batches of alerts into verdicts. When the process faults (timeout, crash, protocol
error, see :class:`~.process.FilterFault`) the alert it was working on gets an ``error``
verdict with the reason, the process is killed, and the rest of the batch goes to a new
process started after a backoff delay (:func:`~brokerapp.runtime.backoff.backoff_delay`).
After ``max_restarts`` consecutive faults with no alert answered in between, it gives up:
state ``failed`` and :class:`FilterGaveUp`.

:meth:`FilterSupervisor.status` is what an operator (and later the command-and-control API)
reads: state, counters, the last fault's reason, restarts, CPU ms per alert, peak RSS and the
tail of the filter's log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from brokerapp.runtime.backoff import backoff_delay
from brokerapp.runtime.userfilter.process import AlertItem, FilterFault, FilterProcess
from brokerapp.runtime.userfilter.sandbox import SandboxPlan, allocate_uid

__all__ = ["FilterGaveUp", "FilterStatus", "FilterSupervisor", "SupervisorConfig"]

log = logging.getLogger(__name__)


class FilterGaveUp(Exception):  # noqa: N818 - a state, reported as such
    """The filter faulted ``max_restarts`` times in a row; it is not restarted again."""


@dataclass
class SupervisorConfig:
    """Timeouts and restart policy of one supervised filter.

    Attributes
    ----------
    answer_timeout : float
        Seconds allowed per answer.
    start_timeout : float
        Seconds allowed for the handshake.
    window : int
        Alerts written ahead of their answers.
    max_restarts : int
        Consecutive faults before giving up.
    restart_initial, restart_max : float
        Backoff before a restart: doubles per consecutive fault, from initial to max.
    uid_base : int
        First uid of the sandboxes' range.
    use_cgroups : bool
        Use cgroup v1 ``pids``/``cpu`` groups where writable.
    staging_parent : Path, optional
        Where the sandboxes' staging folders go.
    usage_interval : float
        Seconds between two reads of the sandbox's CPU and memory.
    """

    answer_timeout: float = 5.0
    start_timeout: float = 10.0
    window: int = 16
    max_restarts: int = 5
    restart_initial: float = 0.5
    restart_max: float = 30.0
    uid_base: int = 61000
    use_cgroups: bool = True
    staging_parent: Path | None = None
    usage_interval: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> SupervisorConfig:
        """Build from the broker's settings (``userfilter_*`` fields)."""
        return cls(
            answer_timeout=settings.userfilter_answer_timeout,
            start_timeout=settings.userfilter_start_timeout,
            window=settings.userfilter_window,
            max_restarts=settings.userfilter_max_restarts,
            restart_initial=settings.userfilter_restart_initial,
            restart_max=settings.userfilter_restart_max,
            uid_base=settings.userfilter_uid_base,
            use_cgroups=settings.userfilter_cgroups,
        )


@dataclass
class FilterStatus:
    """What a filter has done so far.

    Attributes
    ----------
    state : str
        ``new``, ``starting``, ``running``, ``faulted`` (killed, restarted on the next
        alert), ``backoff`` (waiting to restart), ``failed`` (gave up) or ``stopped``.
    alerts_in : int
        Alerts offered.
    passed, dropped, emitted : int
        Alerts answered with each action (``emitted`` counts alerts, not records).
    records_out : int
        Records for the filter's own streams.
    alerts_out : int
        Messages the runner produced (passes plus records).
    errors : int
        Alerts that got no verdict: the filter reported an error, or faulted on it.
    faults : dict
        Faults by kind (``start``, ``timeout``, ``crash``, ``protocol``).
    restarts : int
        Processes started after the first.
    last_reason : str or None
        The most recent error or fault, e.g. ``"timeout: no answer within 2 s"``.
    cpu_ms : float
        CPU used by all its sandboxes so far.
    cpu_ms_per_alert : float
        ``cpu_ms / alerts_in``.
    peak_rss_kb : int
        Largest resident set any of its processes reached.
    throttled_ms : float
        Time its CPU quota throttled it (cgroup ``cpu``; 0 without).
    log_tail : list of str
        Last lines of its standard error.
    """

    state: str = "new"
    alerts_in: int = 0
    passed: int = 0
    dropped: int = 0
    emitted: int = 0
    records_out: int = 0
    alerts_out: int = 0
    errors: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    last_reason: str | None = None
    cpu_ms: float = 0.0
    cpu_ms_per_alert: float = 0.0
    peak_rss_kb: int = 0
    throttled_ms: float = 0.0
    log_tail: list[str] = field(default_factory=list)


class FilterSupervisor:
    """Run one filter in a sandbox, restart it when it faults, and keep its status.

    Parameters
    ----------
    name : str
        The filter's name.
    plan : SandboxPlan
        Its sandbox.
    config : SupervisorConfig
        Timeouts and restart policy.
    streams : frozenset of str
        Its granted output streams.
    params : dict, optional
        Its parameters (sent in ``start``).
    """

    def __init__(
        self,
        name: str,
        plan: SandboxPlan,
        config: SupervisorConfig | None = None,
        streams: frozenset[str] = frozenset(),
        params: dict | None = None,
    ):
        self.name = name
        self.plan = plan
        self.config = config or SupervisorConfig()
        self.streams = streams
        self.params = params or {}
        self.uid = allocate_uid(self.config.uid_base)
        self._status = FilterStatus()
        self._process: FilterProcess | None = None
        self._consecutive = 0
        self._cpu_closed = 0.0
        self._cpu_current = 0.0
        self._throttled_closed = 0.0
        self._last_usage = 0.0
        self._log_closed: list[str] = []
        self.encoding = "json"

    @property
    def state(self) -> str:
        """The current state (see :class:`FilterStatus`)."""
        return self._status.state

    def status(self) -> dict[str, Any]:
        """Return the status as a JSON-ready dict."""
        status = self._status
        status.cpu_ms = round(self._cpu_closed + self._cpu_current, 3)
        status.cpu_ms_per_alert = (
            round(status.cpu_ms / status.alerts_in, 4) if status.alerts_in else 0.0
        )
        live = self._process.log_tail if self._process else []
        status.log_tail = (self._log_closed + list(live))[-50:]
        live_throttled = self._process.throttled_ms() if self._process else 0.0
        status.throttled_ms = round(self._throttled_closed + live_throttled, 3)
        return asdict(status)

    async def start(self) -> str:
        """Start the first process (restarting with backoff if it faults).

        Returns
        -------
        str
            The filter's input encoding.

        Raises
        ------
        FilterGaveUp
            If it never starts within the restart limit.
        """
        await self._ensure_process()
        return self.encoding

    async def _ensure_process(self) -> FilterProcess:
        while self._process is None:
            if self._status.state == "failed":
                raise FilterGaveUp(self._status.last_reason or "failed")
            if self._consecutive:
                self._status.state = "backoff"
                await asyncio.sleep(
                    backoff_delay(
                        self._consecutive, self.config.restart_initial, self.config.restart_max
                    )
                )
            first = self._status.state == "new"
            self._status.state = "starting"
            process = FilterProcess(
                self.name,
                self.plan,
                self.uid,
                streams=self.streams,
                params=self.params,
                answer_timeout=self.config.answer_timeout,
                start_timeout=self.config.start_timeout,
                window=self.config.window,
                use_cgroups=self.config.use_cgroups,
                staging_parent=self.config.staging_parent,
            )
            if not first:
                self._status.restarts += 1
            try:
                self.encoding = await process.start()
            except FilterFault as fault:
                self._record_fault(fault, process)
                continue
            self._process = process
            self._status.state = "running"
        return self._process

    def _record_fault(self, fault: FilterFault, process: FilterProcess) -> None:
        self._status.faults[fault.kind] = self._status.faults.get(fault.kind, 0) + 1
        self._status.last_reason = f"{fault.kind}: {fault.reason}"
        self._log_closed = (self._log_closed + list(process.log_tail))[-50:]
        self._close_usage(process)
        self._consecutive += 1
        log.warning("user filter %s: %s", self.name, self._status.last_reason)
        self._status.state = "faulted"
        if self._consecutive > self.config.max_restarts:
            self._status.state = "failed"
            self._status.last_reason += f" (gave up after {self._consecutive} faults in a row)"

    def _sample_usage(self, process: FilterProcess | None, force: bool = False) -> None:
        now = time.monotonic()
        if process is None or (not force and now - self._last_usage < self.config.usage_interval):
            return
        self._last_usage = now
        usage = process.usage()
        if usage.processes:
            self._cpu_current = max(self._cpu_current, usage.cpu_ms)
            self._status.peak_rss_kb = max(self._status.peak_rss_kb, usage.rss_peak_kb)

    def _close_usage(self, process: FilterProcess) -> None:
        """Fold the usage of an ended process into the totals."""
        self._sample_usage(process, force=True)
        self._cpu_closed += self._cpu_current
        self._cpu_current = 0.0
        self._throttled_closed += process.throttled_ms()

    async def process(self, items: list[AlertItem]) -> list[dict]:
        """Return one verdict per alert, in order, restarting the filter as needed.

        Parameters
        ----------
        items : list of AlertItem
            The alerts (``record`` filled for ``"json"`` filters, ``body`` and ``schema``
            for ``"avro"`` ones: see :attr:`encoding` after :meth:`start`).

        Returns
        -------
        list of dict
            Verdicts as :func:`~brokerapp.userfilter.protocol.check_answer` returns them
            (``action`` one of ``drop``, ``pass``, ``emit``, ``error``).

        Raises
        ------
        FilterGaveUp
            If the filter reached the restart limit; verdicts for the batch are lost (the
            runner does not commit it).
        """
        verdicts: list[dict] = []
        pending = items
        self._status.alerts_in += len(items)
        while pending:
            process = await self._ensure_process()
            try:
                answers = await process.exchange(pending)
            except FilterFault as fault:
                answers = fault.answered
                if answers:
                    self._consecutive = 0
                verdicts += answers
                verdicts.append(
                    {"action": "error", "reason": f"{fault.kind}: {fault.reason}", "fault": True}
                )
                pending = pending[len(answers) + 1 :]
                self._process = None
                self._record_fault(fault, process)
                await process.close()
                continue
            self._consecutive = 0
            verdicts += answers
            pending = []
        self._count(verdicts)
        self._sample_usage(self._process)
        return verdicts

    def _count(self, verdicts: list[dict]) -> None:
        status = self._status
        for verdict in verdicts:
            action = verdict["action"]
            if action == "pass":
                status.passed += 1
            elif action == "drop":
                status.dropped += 1
            elif action == "emit":
                status.emitted += 1
                status.records_out += len(verdict["records"])
            else:
                status.errors += 1
                if not verdict.get("fault"):  # a fault's reason is already recorded
                    status.last_reason = verdict["reason"]

    async def stop(self) -> None:
        """Close the filter's input, give it a moment to exit, then kill it."""
        process, self._process = self._process, None
        if process is not None:
            await process.close(grace=1.0)
            self._log_closed = (self._log_closed + list(process.log_tail))[-50:]
            self._close_usage(process)
        if self._status.state != "failed":
            self._status.state = "stopped"
