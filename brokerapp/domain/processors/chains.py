"""Chains: an ordered list of processors run on one alert, and what they decided.

A processing node decodes each alert once and hands the same
:class:`~brokerapp.model.alert.Alert` to every processor of its chain. :meth:`Chain.run` runs
the processors in order and returns a :class:`ChainResult`: whether the alert passed (no
:class:`~brokerapp.domain.processors.outcomes.Drop`), who dropped or stopped it, the
annotations, the emits in order, and the time each processor took. A processor that raises, or
returns something that is not an outcome, makes :meth:`Chain.run` raise
:class:`ProcessorError` (processor name, alert ID, original exception): the node dead-letters
the alert. Exceptions are never swallowed. Pure: no Kafka, no asyncio.

:attr:`Chain.reads` is what the node needs to decode for the chain: the union of its
processors' :attr:`~brokerapp.domain.processors.base.AlertProcessor.reads` plus the alert ID
(which the chain reads itself, to name the alert in errors), or None when one of them does not
say (the node then decodes whole alerts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brokerapp.domain.processors.base import AlertProcessor
from brokerapp.domain.processors.outcomes import OUTCOME_TYPES, Drop, Outcome, Pass
from brokerapp.model.alert import Alert

__all__ = ["Chain", "ChainResult", "ProcessorError"]


class ProcessorError(RuntimeError):
    """A processor raised, or returned something that is not an outcome.

    The node dead-letters the alert with this error as the reason.

    Parameters
    ----------
    processor : str
        Name of the processor.
    alert_id : int or None
        ID of the alert it was processing.
    original : BaseException
        What it raised (or the ``TypeError`` describing a bad return value).

    Attributes
    ----------
    processor : str
        Name of the processor.
    alert_id : int or None
        ID of the alert.
    original : BaseException
        The original exception (also the ``__cause__`` when raised by :meth:`Chain.run`).
    """

    def __init__(self, processor: str, alert_id: int | None, original: BaseException):
        super().__init__(processor, alert_id, original)
        self.processor = processor
        self.alert_id = alert_id
        self.original = original

    def __str__(self) -> str:
        return (
            f"processor {self.processor!r} failed on alert {self.alert_id}: "
            f"{type(self.original).__name__}: {self.original}"
        )


@dataclass(slots=True)
class ChainResult:
    """What a chain decided for one alert.

    Attributes
    ----------
    passed : bool
        False when a processor dropped the alert.
    dropped_by : str or None
        Name of that processor.
    reason : str
        The reason it gave ("" when the alert passed).
    annotations : dict
        ``alert.annotations`` after the run (the same dict), by processor name.
    emits : list of (str, list of mapping or None)
        ``(stream, records)`` in the order emitted; ``records`` None means the alert itself.
        Empty when the alert was dropped.
    stopped_by : str or None
        Name of the processor that ended the chain early with ``stop=True`` (None if it ran to
        the end, or the alert was dropped).
    timings : dict of str to float
        Seconds spent in each processor that ran, by name (summed over same-named ones).
    """

    passed: bool
    dropped_by: str | None = None
    reason: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    emits: list[tuple[str, list[Mapping[str, Any]] | None]] = field(default_factory=list)
    stopped_by: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _outcomes(returned: Any, processor: str, alert_id: int | None) -> Sequence[Outcome]:
    """Check what a processor returned and make it a sequence of outcomes."""
    if isinstance(returned, OUTCOME_TYPES):
        return (returned,)
    if isinstance(returned, list | tuple):
        bad = [item for item in returned if not isinstance(item, OUTCOME_TYPES)]
        if not bad:
            return returned
        problem = f"process() returned a list holding {type(bad[0]).__name__} {bad[0]!r}"
    elif returned is None:
        problem = "process() returned None; return Pass() to let the alert through"
    else:
        problem = f"process() returned {type(returned).__name__} {returned!r}"
    raise ProcessorError(
        processor, alert_id, TypeError(f"{problem}: expected Drop, Pass, Emit or a list of them")
    )


class Chain:
    """An ordered list of processors, run on one alert at a time.

    Parameters
    ----------
    processors : iterable of AlertProcessor
        The processors, in order.
    name : str
        Name of the chain (for status pages and logs).

    Attributes
    ----------
    processors : tuple of AlertProcessor
        The processors, in order.
    name : str
        Name of the chain.
    reads : frozenset of str or None
        Read names the chain needs (module docstring), None for "anything".
    """

    CHAIN_READS = frozenset({"alert_id"})
    """What :meth:`run` reads itself."""

    def __init__(self, processors: Iterable[AlertProcessor], name: str = "chain"):
        self.processors: tuple[AlertProcessor, ...] = tuple(processors)
        for processor in self.processors:
            if not isinstance(processor, AlertProcessor):
                raise TypeError(f"not an AlertProcessor: {processor!r}")
        self.name = name
        needed = set(self.CHAIN_READS)
        for processor in self.processors:
            if processor.reads is None:
                self.reads: frozenset[str] | None = None
                break
            needed |= processor.reads
        else:
            self.reads = frozenset(needed)

    def run(self, alert: Alert) -> ChainResult:
        """Run the processors on ``alert`` until one drops or stops it, or all have run.

        Parameters
        ----------
        alert : Alert
            The decoded alert; its ``annotations`` are updated in place.

        Returns
        -------
        ChainResult
            The decision.

        Raises
        ------
        ProcessorError
            If a processor raises (the original exception is the cause) or returns something
            that is not an outcome.
        """
        annotations = alert.annotations
        emits: list[tuple[str, list[Mapping[str, Any]] | None]] = []
        timings: dict[str, float] = {}
        for processor in self.processors:
            name = processor.name
            started = time.perf_counter()
            try:
                returned = processor.process(alert)
            except Exception as exc:
                raise ProcessorError(name, alert.view.alert_id, exc) from exc
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
            stop = False
            for outcome in _outcomes(returned, name, alert.view.alert_id):
                if isinstance(outcome, Drop):
                    return ChainResult(
                        passed=False,
                        dropped_by=name,
                        reason=outcome.reason,
                        annotations=annotations,
                        timings=timings,
                    )
                if isinstance(outcome, Pass):
                    if outcome.annotations:
                        annotations.setdefault(name, {}).update(outcome.annotations)
                else:
                    records = None if outcome.records is None else list(outcome.records)
                    emits.append((outcome.stream, records))
                stop = stop or outcome.stop
            if stop:
                return ChainResult(
                    passed=True,
                    annotations=annotations,
                    emits=emits,
                    stopped_by=name,
                    timings=timings,
                )
        return ChainResult(passed=True, annotations=annotations, emits=emits, timings=timings)

    def __len__(self) -> int:
        return len(self.processors)

    def __repr__(self) -> str:
        return f"Chain({self.name!r}, {[p.name for p in self.processors]})"
