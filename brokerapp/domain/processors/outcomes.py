"""What a processor returns for one alert: :class:`Drop`, :class:`Pass` or :class:`Emit`.

:meth:`~brokerapp.domain.processors.base.AlertProcessor.process` returns one outcome, or a
list of outcomes:

- :class:`Drop` ``(reason)``: the alert is not passed on. The chain stops, and emits made
  earlier in the chain (by this or any earlier processor) are discarded: a dropped alert goes
  nowhere, so a filter has the same effect wherever it stands in the chain (placed first, it
  also saves the later processors' work).
- :class:`Pass` ``(annotations, stop)``: the alert goes on; ``annotations`` are merged into
  ``alert.annotations[processor.name]``; ``stop=True`` ends the chain after this processor,
  the alert still passing.
- :class:`Emit` ``(stream, records, stop)``: send to the named output stream, either the alert
  itself (``records=None``: the node forwards its original bytes unchanged) or the given new
  records; the chain goes on unless ``stop=True``.

The outcomes of a list are applied in order (a Drop ends the list and the chain there); an
empty list is a plain pass. Returning anything else (None included) is an error
(:class:`~brokerapp.domain.processors.chains.ProcessorError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["OUTCOME_TYPES", "Drop", "Emit", "Outcome", "Pass"]


@dataclass(frozen=True, slots=True)
class Drop:
    """Outcome: the alert is not passed on; the chain stops and discards its emits.

    Attributes
    ----------
    reason : str
        Why, for counters and logs.
    """

    reason: str = ""

    def __post_init__(self) -> None:
        """Check the reason is a string."""
        if not isinstance(self.reason, str):
            raise TypeError(f"Drop reason must be a str, not {type(self.reason).__name__}")


@dataclass(frozen=True, slots=True)
class Pass:
    """Outcome: the alert goes on, optionally annotated.

    Attributes
    ----------
    annotations : mapping or None
        Merged into ``alert.annotations[processor.name]`` (a dict created on first use).
    stop : bool
        End the chain after this processor; the alert still passes.
    """

    annotations: Mapping[str, Any] | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        """Check the annotations are a mapping."""
        if self.annotations is not None and not isinstance(self.annotations, Mapping):
            raise TypeError(
                f"Pass annotations must be a mapping, not {type(self.annotations).__name__}"
            )


@dataclass(frozen=True, slots=True)
class Emit:
    """Outcome: send to a named output stream.

    Attributes
    ----------
    stream : str
        Name of the output stream (the node maps it to a topic).
    records : tuple of mapping, or None
        None to send the alert itself (the node forwards its original bytes unchanged), else
        the new records to send (a sequence given here is stored as a tuple).
    stop : bool
        End the chain after this processor; the alert still passes.
    """

    stream: str
    records: Sequence[Mapping[str, Any]] | None = None
    stop: bool = False

    def __post_init__(self) -> None:
        """Check the stream name and freeze the records into a tuple of mappings."""
        if not isinstance(self.stream, str) or not self.stream:
            raise ValueError(f"Emit stream must be a non-empty str, not {self.stream!r}")
        if self.records is None:
            return
        if isinstance(self.records, Mapping | str | bytes) or not isinstance(
            self.records, Iterable
        ):
            raise TypeError(
                "Emit records must be a sequence of mappings (wrap a single record in a list), "
                f"not {type(self.records).__name__}"
            )
        records = tuple(self.records)
        for record in records:
            if not isinstance(record, Mapping):
                raise TypeError(f"Emit records must be mappings, not {type(record).__name__}")
        object.__setattr__(self, "records", records)


Outcome: TypeAlias = Drop | Pass | Emit
"""What :meth:`~brokerapp.domain.processors.base.AlertProcessor.process` returns (or a list)."""
OUTCOME_TYPES = (Drop, Pass, Emit)
"""The outcome classes, for ``isinstance`` checks."""
