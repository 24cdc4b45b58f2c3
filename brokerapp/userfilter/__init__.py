"""Python SDK for user filters: what a user imports inside the sandbox (stdlib only).

A user filter is either a decorated function::

    from brokerapp import userfilter

    @userfilter.filter()                 # input="json" (default) or "avro"
    def bright(alert):
        if alert["candidate"]["magpsf"] < 18:
            return userfilter.Pass(annotations={"why": "bright"})
        return userfilter.Drop()

or a class in the manner of DMTN-028's ``AlertFilter``::

    class Bright(userfilter.AlertFilter):
        input = "json"

        def setup(self, params):          # optional; params come from the runner
            self.limit = params.get("mag", 18)

        def filter(self, alert):
            return alert["candidate"]["magpsf"] < self.limit

The runner starts it with ``python3 -m brokerapp.userfilter MODULE:ATTRIBUTE`` (the filter's
code directory is on ``sys.path``); a script may instead call :func:`run` itself.

What a filter may return per alert:

- ``None``, ``False`` or :class:`Drop` (optionally with a reason): drop;
- ``True`` or :class:`Pass` (optionally with ``annotations``, a JSON object): pass the alert
  on to the filter's output topic, annotations in a header;
- :class:`Emit` or a list of them: records for the filter's own output streams;

and an exception is reported as an error for that alert (the filter keeps running).

In ``"json"`` mode the function receives the decoded alert as a dict (Avro ``bytes`` fields,
such as cutouts, as base64 strings). In ``"avro"`` mode it receives an :class:`AvroAlert`
with the bare Avro body and its writer schema, to decode with a library of the user's choice.

The module imports nothing outside the standard library, so the sandbox needs nothing else.
Anything the filter prints goes to standard error (its log): the SDK keeps standard output
for protocol frames. Specification: ``docs/userfilter.md``.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from brokerapp.userfilter.protocol import (
    INPUTS,
    PROTOCOL_VERSION,
    FrameError,
    read_frame,
    write_frame,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AlertFilter",
    "AvroAlert",
    "Drop",
    "Emit",
    "Pass",
    "answer_for",
    "filter",
    "load_entry_point",
    "run",
]


@dataclass(frozen=True)
class Pass:
    """Pass the alert on, with optional annotations (a JSON-serialisable dict)."""

    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Drop:
    """Drop the alert, with an optional reason (counted, not stored)."""

    reason: str | None = None


@dataclass(frozen=True)
class Emit:
    """One record for one of the filter's own output streams (granted by name)."""

    stream: str
    value: Any


@dataclass(frozen=True)
class AvroAlert:
    """An alert as Avro: the bare body and its writer schema (``"avro"`` input mode).

    Attributes
    ----------
    body : bytes
        The bare Avro body (no framing).
    schema : dict
        The writer schema, as JSON.
    schema_id : int
        The schema's ID in the broker's registry (or a session-local number).
    topic, partition, offset
        Where the alert was read.
    """

    body: bytes
    schema: Any
    schema_id: int
    topic: str = ""
    partition: int = -1
    offset: int = -1


class AlertFilter:
    """Base class of class-style filters: override :meth:`filter` (and :meth:`setup`).

    Attributes
    ----------
    input : str
        ``"json"`` (default) or ``"avro"``.
    """

    input: str = "json"

    def setup(self, params: dict[str, Any]) -> None:
        """Prepare before the first alert; ``params`` are the filter's configured parameters."""

    def filter(self, alert: Any) -> Any:
        """Answer for one alert (see the module docstring for the possible return values)."""
        raise NotImplementedError


class _FunctionFilter(AlertFilter):
    def __init__(self, function: Callable[[Any], Any], input: str):
        self.function = function
        self.input = input

    def filter(self, alert: Any) -> Any:
        return self.function(alert)

    def __call__(self, alert: Any) -> Any:
        return self.function(alert)


def filter(input: str = "json") -> Callable[[Callable[[Any], Any]], AlertFilter]:  # noqa: A001
    """Decorate a function ``f(alert) -> answer`` into a filter.

    Parameters
    ----------
    input : str
        ``"json"`` for decoded alerts (dicts) or ``"avro"`` for :class:`AvroAlert`.

    Returns
    -------
    callable
        The decorator; the decorated name is an :class:`AlertFilter` instance that can still
        be called like the function.
    """
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, not {input!r}")

    def wrap(function: Callable[[Any], Any]) -> AlertFilter:
        instance = _FunctionFilter(function, input)
        instance.__doc__ = function.__doc__
        return instance

    return wrap


def answer_for(result: Any, alert_id: int) -> dict[str, Any]:
    """Turn what a filter returned into a protocol ``result`` message.

    Parameters
    ----------
    result : object
        The filter's return value.
    alert_id : int
        The alert's ``id``.

    Returns
    -------
    dict
        The ``result`` message.

    Raises
    ------
    TypeError
        If the value is not one of the accepted answers.
    """
    if result is None or result is False:
        return {"type": "result", "id": alert_id, "action": "drop"}
    if result is True:
        return {"type": "result", "id": alert_id, "action": "pass"}
    if isinstance(result, Drop):
        message: dict[str, Any] = {"type": "result", "id": alert_id, "action": "drop"}
        if result.reason is not None:
            message["reason"] = result.reason
        return message
    if isinstance(result, Pass):
        return {
            "type": "result",
            "id": alert_id,
            "action": "pass",
            "annotations": dict(result.annotations),
        }
    records = [result] if isinstance(result, Emit) else result
    if isinstance(records, Iterable) and not isinstance(records, str | bytes | dict):
        records = list(records)
        if records and all(isinstance(r, Emit) for r in records):
            return {
                "type": "result",
                "id": alert_id,
                "action": "emit",
                "records": [{"stream": r.stream, "value": r.value} for r in records],
            }
    raise TypeError(
        f"a filter returns None/False/Drop, True/Pass or Emit records, not {type(result).__name__}"
    )


def load_entry_point(spec: str) -> AlertFilter:
    """Import ``MODULE:ATTRIBUTE`` and return it as a filter instance.

    Parameters
    ----------
    spec : str
        E.g. ``"bright:bright"``; the attribute is an :class:`AlertFilter` instance (such as a
        decorated function), an :class:`AlertFilter` subclass (instantiated without
        arguments) or a plain function (taken as a ``"json"`` filter).

    Returns
    -------
    AlertFilter
        The filter.
    """
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"entry point {spec!r} is not MODULE:ATTRIBUTE")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, AlertFilter):
        return target
    if isinstance(target, type) and issubclass(target, AlertFilter):
        return target()
    if callable(target):
        return _FunctionFilter(target, "json")
    raise TypeError(f"{spec} is neither a filter class, a filter nor a function")


def _alert_argument(message: dict[str, Any], encoding: str, schemas: dict[int, Any]) -> Any:
    if encoding == "json":
        return message["alert"]
    schema_id = int(message["schema_id"])
    if "schema" in message:
        schemas[schema_id] = message["schema"]
    return AvroAlert(
        body=base64.b64decode(message["avro"]),
        schema=schemas[schema_id],
        schema_id=schema_id,
        topic=str(message.get("topic", "")),
        partition=int(message.get("partition", -1)),
        offset=int(message.get("offset", -1)),
    )


def run(
    alert_filter: AlertFilter | type[AlertFilter],
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> int:
    """Serve the protocol until the runner closes standard input or sends ``stop``.

    Parameters
    ----------
    alert_filter : AlertFilter or AlertFilter subclass
        The filter (a class is instantiated without arguments).
    stdin, stdout : BinaryIO, optional
        The pipe ends (default: the process's standard input, and a duplicate of its standard
        output, after which file descriptor 1 and ``sys.stdout`` point at standard error so
        that prints cannot corrupt the frames).

    Returns
    -------
    int
        The exit status (0 at a clean end).
    """
    if isinstance(alert_filter, type):
        alert_filter = alert_filter()
    if stdin is None:
        stdin = sys.stdin.buffer
    if stdout is None:
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    start = read_frame(stdin)
    if start is None:
        return 0
    if start.get("type") != "start":
        raise FrameError(f"expected 'start', got {start.get('type')!r}")
    encoding = getattr(alert_filter, "input", "json")
    if encoding not in INPUTS:
        raise FrameError(f"filter asks for unknown input {encoding!r}")
    alert_filter.setup(dict(start.get("params") or {}))
    write_frame(stdout, {"type": "hello", "protocol": PROTOCOL_VERSION, "input": encoding})
    schemas: dict[int, Any] = {}
    while True:
        message = read_frame(stdin)
        if message is None or message["type"] == "stop":
            return 0
        if message["type"] != "alert":
            continue
        alert_id = message["id"]
        try:
            answer = answer_for(
                alert_filter.filter(_alert_argument(message, encoding, schemas)), alert_id
            )
        except Exception as exc:  # noqa: BLE001 - the user's error is reported, not fatal
            answer = {"type": "error", "id": alert_id, "reason": f"{type(exc).__name__}: {exc}"}
        try:
            write_frame(stdout, answer)
        except (TypeError, ValueError) as exc:  # annotations or values not JSON
            reason = f"answer is not JSON: {exc}"
            write_frame(stdout, {"type": "error", "id": alert_id, "reason": reason})
