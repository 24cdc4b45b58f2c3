"""A processing node: one branch worker running a chain of alert processors.

``build_node`` makes the Faust app of a node. Its batch loop (:mod:`brokerapp.runtime.batch`,
registered as the branch's), reads ``alerts`` in batches, decodes each alert once
(:class:`brokerapp.runtime.branch.BranchRuntime`), runs the node's current
chain (:class:`brokerapp.domain.processors.ChainFile`, reloaded when the file changes, checked
every ``chain_poll_seconds`` by a timer and before each alert) and sends, for each
``Emit(stream)`` of the result, the alert's original bytes (or the emitted records, as
JSON) to the stream's topic: the node's ``streams`` mapping names it, else it is
``<topic_prefix><branch>-<stream>``. Alerts a processor drops, or that pass without an
emit, go nowhere (they are counted). A processor that raises sends the alert to the
dead-letter topic with the error as reason.

Web view (the node's own port): ``/<branch>/`` HTML and ``/<branch>/status.json``: counts,
processing and end-to-end latency, and the chain (version, processors, reloads, last error).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust

from brokerapp.domain.processors import ChainFile, ProcessorError
from brokerapp.model.settings import Settings
from brokerapp.runtime.app import create_app
from brokerapp.runtime.batch import Outbox, Record
from brokerapp.runtime.branch import BranchRuntime, add_status_pages

__all__ = ["build_node"]


def build_node(
    settings: Settings,
    branch: str,
    chain_path: Path,
    streams: Mapping[str, str],
    web_port: int,
    source_topic: str | None = None,
) -> faust.App:
    """Build the app of a processing node.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    branch : str
        Branch name: app id ``<app_prefix>-<branch>`` (its own consumer group).
    chain_path : Path
        The chain file (TOML).
    streams : mapping of str to str
        Stream name to output topic, for streams whose topic is not the default.
    web_port : int
        Port of the node's web view.
    source_topic : str, optional
        Topic to read instead of the ``alerts`` buffer (e.g. the non-solar stream).

    Returns
    -------
    faust.App
        With its batch loop (``app.batch_loops[branch]``).
    """
    app = create_app(settings, branch, web_port=web_port)
    runtime = BranchRuntime(app, settings, branch, source_topic)
    chains = ChainFile(chain_path, poll_seconds=settings.chain_poll_seconds)
    outcomes: Counter[str] = Counter()

    def topic_of(stream: str) -> str:
        return streams.get(stream) or f"{settings.topic_prefix}{branch}-{stream}"

    @app.task
    async def declare_outputs() -> None:
        """Create the node's known output topics when the worker starts."""
        await runtime.declare(list(streams.values()))

    async def process(records: list[Record], out: Outbox) -> None:
        """Run the chain on every alert of one batch."""
        chain = chains.current(time.monotonic())
        async for record, alert in runtime.batch_alerts(records, out, chain.reads):
            try:
                result = chain.run(alert)
            except ProcessorError as exc:
                runtime.dead_letter_to(out, record, exc)
                continue
            for name, emitted in result.emits:
                if emitted is None:
                    runtime.forward_to(out, topic_of(name), record)
                else:
                    for new in emitted:
                        runtime.json_to(out, topic_of(name), record, record.key, new)
            outcomes["passed" if result.passed else "dropped"] += 1

    runtime.run_batches(process)

    @app.timer(interval=settings.chain_poll_seconds)
    async def reload_chain() -> None:
        """Pick up a changed chain file while no alert arrives, too."""
        chains.current(time.monotonic())

    def status() -> dict[str, Any]:
        chain = chains.chain
        return {
            **runtime.status(),
            "outcomes": dict(outcomes),
            "chain": {
                "file": str(chain_path),
                "name": chain.name if chain is not None else None,
                "version": chains.version,
                "processors": [p.name for p in chain.processors] if chain is not None else [],
                "reloads": chains.reloads,
                "reload_failures": chains.reload_failures,
                "last_error": chains.last_error,
            },
            "streams": {name: topic_of(name) for name in streams},
        }

    add_status_pages(app, branch, status)

    app.status = status
    return app
