"""Network fault injection for integration tests: a TCP proxy that can refuse connections.

A test points a client at the proxy instead of a real server (a registry, say); the proxy
forwards bytes both ways. ``down()`` closes every connection and refuses new ones, as a
server that has gone away does; ``up()`` forwards again. The server behind it is always the
real one: only the network between is broken. The proxy runs its own event loop in a thread,
so it keeps forwarding while a test blocks.
"""

from __future__ import annotations

import asyncio
import threading

from .workers import free_port


class TcpProxy:
    """Forward 127.0.0.1:<port> to ``target_host:target_port`` until told not to."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )
        self._writers -= {client_writer, server_writer}

    async def _up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def up(self) -> None:
        """Accept and forward connections."""
        self._call(self._up())

    def down(self) -> None:
        """Drop every connection and refuse new ones."""
        self._call(self._down())

    async def _cancel_all(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Stop the proxy and its thread."""
        self.down()
        self._call(self._cancel_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
