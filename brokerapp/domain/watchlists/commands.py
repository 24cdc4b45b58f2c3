"""Control-topic commands: put or delete one watchlist, as one JSON message.

A :class:`WatchlistCommand` is ``{"op": "put", "watchlist_id": ..., "payload": {...}}`` or
``{"op": "delete", "watchlist_id": ..., "payload": null}``; any other ``op`` is an error,
and a put's payload must carry the same ID. Key the message by :attr:`WatchlistCommand.key`
(the ID), so a compacted control topic keeps the last command per watchlist. A watchlist
JSON costs about 80 bytes an entry: Kafka's default 1 MB message limit holds some 12,000
entries; larger watchlists go as chunks and a commit
(:mod:`brokerapp.domain.watchlists.chunks`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brokerapp.domain.watchlists.model import (
    SolarSystemWatchlist,
    Watchlist,
    _check_id,
    _fields_problems,
    _watchlist_problems,
    watchlist_to_json,
)
from brokerapp.domain.watchlists.problems import Problem, WatchlistError, _InvalidValueError

__all__ = ["COMMAND_OPS", "WatchlistCommand"]

COMMAND_OPS = ("put", "delete")
"""Operations of a :class:`WatchlistCommand`."""

_COMMAND_SOURCE = "watchlist command"


@dataclass(frozen=True)
class WatchlistCommand:
    """A change to the set of watchlists, as sent on the control topic.

    Attributes
    ----------
    op : str
        ``"put"`` (add or replace the whole watchlist) or ``"delete"``.
    watchlist_id : str
        The watchlist concerned.
    payload : Watchlist or SolarSystemWatchlist or None
        The new watchlist for ``put`` (its ``id`` must be ``watchlist_id``); None for
        ``delete``.

    Raises
    ------
    WatchlistError
        For an unknown op, an invalid ID, a missing or mismatched payload, or a payload on
        a delete.
    """

    op: str
    watchlist_id: str
    payload: Watchlist | SolarSystemWatchlist | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.op not in COMMAND_OPS:
            problems.append(
                Problem(
                    f"unknown op {self.op!r} (expected {' or '.join(map(repr, COMMAND_OPS))})",
                    column="op",
                    where="op",
                )
            )
        try:
            _check_id(self.watchlist_id)
        except _InvalidValueError as exc:
            problems.append(Problem(str(exc), column="watchlist_id", where="watchlist_id"))
        if self.op == "put":
            if not isinstance(self.payload, Watchlist | SolarSystemWatchlist):
                problems.append(
                    Problem(
                        f"a put needs a watchlist, got {type(self.payload).__name__}",
                        column="payload",
                        where="payload",
                    )
                )
            elif self.payload.id != self.watchlist_id:
                problems.append(
                    Problem(
                        f"the payload's id {self.payload.id!r} is not the command's "
                        f"watchlist_id {self.watchlist_id!r}",
                        column="payload",
                        where="payload.id",
                    )
                )
        elif self.op == "delete" and self.payload is not None:
            problems.append(Problem("a delete takes no payload", column="payload", where="payload"))
        if problems:
            raise WatchlistError(problems, source=_COMMAND_SOURCE)

    @classmethod
    def put(cls, watchlist: Watchlist | SolarSystemWatchlist) -> WatchlistCommand:
        """Return the command adding or replacing ``watchlist``."""
        return cls("put", watchlist.id, watchlist)

    @classmethod
    def delete(cls, watchlist_id: str) -> WatchlistCommand:
        """Return the command deleting the watchlist ``watchlist_id``."""
        return cls("delete", watchlist_id)

    @property
    def key(self) -> bytes:
        """The Kafka message key: the watchlist ID in UTF-8."""
        return self.watchlist_id.encode()

    def to_json(self) -> dict:
        """Return ``{"op", "watchlist_id", "payload"}`` (payload None for a delete)."""
        return {
            "op": self.op,
            "watchlist_id": self.watchlist_id,
            "payload": None if self.payload is None else watchlist_to_json(self.payload),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WatchlistCommand:
        """Return the command a JSON dict describes (strict).

        Parameters
        ----------
        data : Mapping
            ``op``, ``watchlist_id`` and, for a put, ``payload`` (for a delete ``payload``
            may be left out or null). No other fields.

        Returns
        -------
        WatchlistCommand
            The validated command.

        Raises
        ------
        WatchlistError
            Naming each bad field (``op``, ``payload.entries[2].ra``).
        """
        if not isinstance(data, Mapping):
            raise WatchlistError(
                f"expected a JSON object, got {type(data).__name__}", source=_COMMAND_SOURCE
            )
        problems = _fields_problems(data, ("op", "watchlist_id", "payload"), "")
        problems = [
            p for p in problems if not (p.where == "payload" and data.get("op") == "delete")
        ]
        op = data.get("op")
        if "op" in data and op not in COMMAND_OPS:
            problems.append(
                Problem(
                    f"unknown op {op!r} (expected {' or '.join(map(repr, COMMAND_OPS))})",
                    column="op",
                    where="op",
                )
            )
        payload = None
        if op == "put" and "payload" in data:
            payload, payload_problems = _watchlist_problems(data["payload"])
            problems.extend(
                dataclasses.replace(
                    p, where="payload" + ("." + p.location() if p.location() else "")
                )
                for p in payload_problems
            )
        elif op == "delete" and data.get("payload") is not None:
            problems.append(Problem("a delete takes no payload", where="payload"))
        if problems:
            raise WatchlistError(problems, source=_COMMAND_SOURCE)
        return cls(str(op), data["watchlist_id"], payload)

    def to_bytes(self) -> bytes:
        """Return the compact UTF-8 JSON of :meth:`to_json`, the control-topic value."""
        return json.dumps(
            self.to_json(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> WatchlistCommand:
        """Return the command in a control-topic value.

        Parameters
        ----------
        data : bytes or str
            UTF-8 JSON.

        Returns
        -------
        WatchlistCommand
            The validated command.

        Raises
        ------
        WatchlistError
            If it is not UTF-8 JSON or not a valid command.
        """
        try:
            decoded = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WatchlistError(f"not JSON: {exc}", source=_COMMAND_SOURCE) from None
        return cls.from_json(decoded)
