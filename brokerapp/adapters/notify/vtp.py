"""A VOEvent Transport Protocol broadcaster: what a VTP broker does for its subscribers.

Subscribers (e.g. Comet, ``twistd comet --remote=HOST:PORT``) connect over TCP. To each one
the broadcaster sends every packet handed to :meth:`VTPBroadcaster.broadcast`, framed with
the 4-byte length prefix (:func:`brokerapp.domain.notify.voevent.frame`), and every
``iamalive_s`` a Transport ``iamalive``. It reads what the subscriber sends back: an ``ack``
(or ``nak``) per event, an ``iamalive`` per iamalive. A subscriber that leaves an event
unacknowledged, or sends nothing, for ``ack_timeout_s`` (plus the iamalive interval) is
disconnected (it reconnects, as Comet does, and gets what is broadcast from then on).

Counters per broadcaster: ``subscribers``, ``connections``, ``sent``, ``acked``, ``nak``,
``unacked`` (events still awaiting an ack), ``dropped`` (subscribers disconnected for
silence), ``bytes_sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from brokerapp.domain.notify.voevent import (
    Deframer,
    VOEventError,
    frame,
    parse_transport,
    transport,
)

__all__ = ["VTPBroadcaster"]

logger = logging.getLogger(__name__)


class _Subscriber:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.pending: dict[str, float] = {}  # IVORN -> when sent
        self.last_heard = time.monotonic()


class VTPBroadcaster:
    """Serve VOEvents to VTP subscribers (see the module docstring).

    Parameters
    ----------
    host, port : str, int
        Where to listen (loopback by default in the settings).
    local_ivorn : str
        The broadcaster's IVORN (``Origin`` of its iamalive messages).
    iamalive_s : float
        Interval of the iamalive messages.
    ack_timeout_s : float
        How long an event may stay unacknowledged.
    """

    def __init__(
        self, host: str, port: int, local_ivorn: str, iamalive_s: float, ack_timeout_s: float
    ):
        self.host = host
        self.port = port
        self.local_ivorn = local_ivorn
        self.iamalive_s = iamalive_s
        self.ack_timeout_s = ack_timeout_s
        self.server: asyncio.Server | None = None
        self.subscribers: set[_Subscriber] = set()
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Listen, and start the iamalive and timeout watch."""
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        self._spawn(self._keepalive())
        logger.info("VTP broadcaster on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Disconnect every subscriber and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        for sub in list(self.subscribers):
            await self._drop(sub, None)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sub = _Subscriber(reader, writer)
        self.subscribers.add(sub)
        self.counts["connections"] += 1
        logger.info("VTP subscriber %s connected", sub.peer)
        deframer = Deframer()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                sub.last_heard = time.monotonic()
                for message in deframer.feed(data):
                    self._receive(sub, message)
        except (ConnectionError, VOEventError) as exc:
            logger.warning("VTP subscriber %s: %s", sub.peer, exc)
        finally:
            await self._drop(sub, None)

    def _receive(self, sub: _Subscriber, message: bytes) -> None:
        try:
            reply = parse_transport(message)
        except VOEventError as exc:
            logger.warning("VTP subscriber %s sent %s", sub.peer, exc)
            return
        if reply is None:
            self.counts["unexpected"] += 1
            return
        if reply.role in ("ack", "nak") and reply.origin in sub.pending:
            del sub.pending[reply.origin]
            self.counts["acked" if reply.role == "ack" else "nak"] += 1
        elif reply.role == "iamalive":
            self.counts["iamalive_replies"] += 1

    async def _drop(self, sub: _Subscriber, reason: str | None) -> None:
        if sub not in self.subscribers:
            return
        self.subscribers.discard(sub)
        if reason:
            self.counts["dropped"] += 1
            logger.warning("VTP subscriber %s dropped: %s", sub.peer, reason)
        self.counts["unacked_at_drop"] += len(sub.pending)
        sub.writer.close()
        with contextlib.suppress(ConnectionError):
            await sub.writer.wait_closed()

    async def _send(self, sub: _Subscriber, data: bytes) -> bool:
        try:
            sub.writer.write(data)
            await asyncio.wait_for(sub.writer.drain(), self.ack_timeout_s)
        except (ConnectionError, TimeoutError) as exc:
            await self._drop(sub, f"send failed: {exc!r}")
            return False
        self.counts["bytes_sent"] += len(data)
        return True

    async def broadcast(self, packet: bytes, ivorn: str) -> int:
        """Send one VOEvent to every subscriber; return to how many it went."""
        data = frame(packet)
        sent = 0
        for sub in list(self.subscribers):
            if await self._send(sub, data):
                sub.pending[ivorn] = time.monotonic()
                sent += 1
        self.counts["sent"] += sent
        self.counts["events"] += 1
        return sent

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(min(self.iamalive_s, self.ack_timeout_s) / 2)
            now = time.monotonic()
            for sub in list(self.subscribers):
                late = [t for t in sub.pending.values() if now - t > self.ack_timeout_s]
                if late:
                    await self._drop(sub, f"{len(late)} event(s) not acknowledged")
                elif now - sub.last_heard > self.iamalive_s + self.ack_timeout_s:
                    await self._drop(sub, "silent")
            if now - getattr(self, "_last_alive", 0.0) >= self.iamalive_s:
                self._last_alive = now
                message = frame(transport("iamalive", self.local_ivorn))
                for sub in list(self.subscribers):
                    await self._send(sub, message)

    def status(self) -> dict[str, Any]:
        """Counters and the subscribers connected now."""
        return {
            "listen": f"{self.host}:{self.port}",
            "subscribers": len(self.subscribers),
            "unacked": sum(len(s.pending) for s in self.subscribers),
            **{k: self.counts[k] for k in ("connections", "events", "sent", "acked", "nak")},
            "dropped": self.counts["dropped"],
            "bytes_sent": self.counts["bytes_sent"],
        }
