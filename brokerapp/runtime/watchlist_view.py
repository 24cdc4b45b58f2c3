"""The watchlist worker's REST view: list, read, upload and delete watchlists.

Served on the worker's web port (``watchlist_web_port``) under ``/watchlist/watchlists/``:

``GET /watchlist/watchlists/``
    ``{<ID>: {"name", "owner", "entries": <count>}}`` of every watchlist in force.
``GET /watchlist/watchlists/<ID>``
    The watchlist in force as JSON (:func:`~brokerapp.domain.watchlists.watchlist_to_json`'s
    shape), 404 if there is none.
``PUT /watchlist/watchlists/<ID>?name=..&owner=..[&radius=..][&format=..]``
    The body is a CSV, VOTable or FITS file. It is streamed in (up to
    ``watchlist_upload_max_bytes``, else 413), parsed and checked off the event loop, and a
    bad file is refused (400) with every bad row and column, nothing sent. A good one goes to
    the control topic as chunks of ``watchlist_chunk_entries`` entries and one commit
    (:mod:`brokerapp.domain.watchlists.chunks`); the answer, once the broker has them all,
    is ``{"accepted": <ID>, "entries": <count>, "version": .., "chunks": ..}``. The worker
    puts the new version in force when it applies the commit.
``DELETE /watchlist/watchlists/<ID>``
    Sends a delete: ``{"accepted": <ID>, "op": "delete"}``.

``PUT`` and ``DELETE`` need ``Authorization: Bearer <web_token>`` when the view binds
beyond loopback, or always with ``web_auth="always"`` (:mod:`brokerapp.runtime.webauth`);
without it they answer 401 and send nothing. ``GET`` stays open.

The decisions are plain functions (:func:`list_body`, :func:`get_body`, :func:`upload`,
:func:`delete_messages`) of tables and bytes; :func:`add_watchlist_views` wires them to
Faust's web view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.web import Request, Response, View

from brokerapp.domain.watchlists.chunks import chunk_commands
from brokerapp.domain.watchlists.commands import WatchlistCommand
from brokerapp.domain.watchlists.files import load_watchlist
from brokerapp.domain.watchlists.problems import WatchlistError
from brokerapp.domain.watchlists.zonetable import entries_json, headers, summary
from brokerapp.runtime.webauth import WriteGuard

__all__ = [
    "Message",
    "UploadTooLargeError",
    "add_watchlist_views",
    "delete_messages",
    "get_body",
    "list_body",
    "read_body",
    "upload",
]

Message = tuple[bytes, bytes]
"""A control-topic message: key and value."""


class UploadTooLargeError(ValueError):
    """A request body is longer than the upload limit."""


def list_body(watchlists: Any) -> dict[str, dict]:
    """Return ``{ID: {"name", "owner", "entries"}}`` of every watchlist in force."""
    return {key: summary(header) for key, header in headers(watchlists).items()}


def get_body(watchlists: Any, watchlist_id: str) -> tuple[int, dict]:
    """Return (HTTP status, JSON body) of ``GET`` one watchlist."""
    found = entries_json(watchlists, watchlist_id)
    if found is None:
        return 404, {"error": f"no watchlist {watchlist_id!r}"}
    return 200, found


def upload(
    body: bytes,
    watchlist_id: str,
    query: Mapping[str, str],
    chunk_entries: int,
    version: str | None = None,
) -> tuple[int, dict, list[Message]]:
    """Return (HTTP status, JSON body, messages to send) of ``PUT`` one watchlist file.

    Parameters
    ----------
    body : bytes
        The file.
    watchlist_id : str
        From the path.
    query : Mapping
        ``name`` (default: the ID), ``owner`` (default ``unknown``), ``radius`` [arcsec]
        and ``format``, all optional.
    chunk_entries : int
        Entries per chunk message.
    version : str, optional
        The upload's version (default: a new random one).

    Returns
    -------
    tuple of (int, dict, list of Message)
        200 with the chunk messages then the commit; 400 with ``{"error": ...}`` (every
        bad row and column) and no messages.
    """
    radius = query.get("radius")
    try:
        watchlist = load_watchlist(
            body,
            watchlist_id,
            query.get("name", watchlist_id),
            query.get("owner", "unknown"),
            format=query.get("format"),
            default_radius=float(radius) if radius else None,
            source=f"watchlist {watchlist_id}",
        )
    except (WatchlistError, ValueError) as exc:
        return 400, {"error": str(exc)}, []
    chunks, commit = chunk_commands(watchlist, chunk_entries, version)
    messages = [(chunk.key, chunk.to_bytes()) for chunk in chunks]
    messages.append((commit.key, commit.to_bytes()))
    answer = {
        "accepted": watchlist_id,
        "entries": len(watchlist.entries),
        "version": commit.version,
        "chunks": commit.chunks,
    }
    return 200, answer, messages


def delete_messages(watchlist_id: str) -> tuple[int, dict, list[Message]]:
    """Return (HTTP status, JSON body, messages) of ``DELETE`` one watchlist."""
    try:
        command = WatchlistCommand.delete(watchlist_id)
    except WatchlistError as exc:
        return 400, {"error": str(exc)}, []
    return 200, {"accepted": watchlist_id, "op": "delete"}, [(command.key, command.to_bytes())]


async def read_body(request: Any, limit: int) -> bytes:
    """Read a request body in pieces, at most ``limit`` bytes (else :class:`UploadTooLargeError`).

    Streams ``request.content`` (aiohttp), so the web server's own 1 MB body limit does
    not apply; the whole file is then held in memory (about 50 bytes a CSV entry).
    """
    data = bytearray()
    async for piece in request.content.iter_chunked(1 << 20):
        data += piece
        if len(data) > limit:
            raise UploadTooLargeError(f"the upload is larger than {limit} bytes")
    return bytes(data)


def add_watchlist_views(
    app: faust.App,
    watchlists: Any,
    send: Callable[[list[Message]], Awaitable[None]],
    chunk_entries: int,
    max_bytes: int,
    guard: WriteGuard,
) -> None:
    """Register ``/watchlist/watchlists/`` and ``/watchlist/watchlists/{watchlist_id}``.

    Parameters
    ----------
    app : faust.App
        The watchlist app.
    watchlists : table
        Its ``watchlists`` table (read for ``GET``).
    send : callable
        ``await send(messages)`` sends control messages in order and returns once the
        broker has them.
    chunk_entries : int
        Entries per chunk message.
    max_bytes : int
        Largest upload accepted.
    guard : WriteGuard
        Decides whether a ``PUT`` or ``DELETE`` carries the token it needs (else 401).
    """

    class WatchlistsView(View):
        """List, add or replace, and delete watchlists (commands go to the control topic)."""

        async def get(self, request: Request, watchlist_id: str = "") -> Response:
            if watchlist_id:
                status, body = get_body(watchlists, watchlist_id)
                return self.json(body, status=status)
            return self.json(list_body(watchlists))

        def refused(self, request: Request) -> Response | None:
            reason = guard.refusal(request.headers.get("Authorization"))
            if reason is None:
                return None
            return self.json(
                {"error": reason}, status=401, headers={"WWW-Authenticate": 'Bearer realm="broker"'}
            )

        async def put(self, request: Request, watchlist_id: str = "") -> Response:
            if (refusal := self.refused(request)) is not None:
                return refusal
            try:
                data = await read_body(request, max_bytes)
            except UploadTooLargeError as exc:
                return self.json({"error": str(exc)}, status=413)
            query = dict(request.query)
            status, body, messages = await asyncio.to_thread(
                upload, data, watchlist_id, query, chunk_entries
            )
            if messages:
                await send(messages)
            return self.json(body, status=status)

        async def delete(self, request: Request, watchlist_id: str = "") -> Response:
            if (refusal := self.refused(request)) is not None:
                return refusal
            status, body, messages = delete_messages(watchlist_id)
            if messages:
                await send(messages)
            return self.json(body, status=status)

    app.page("/watchlist/watchlists/")(WatchlistsView)
    app.page("/watchlist/watchlists/{watchlist_id}")(WatchlistsView)
