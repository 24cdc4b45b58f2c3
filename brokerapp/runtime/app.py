"""The Faust app factory every agent module uses.

Each branch calls ``create_app(settings, "<branch>")`` once in its own module under
``agents/``: the app id (and so the consumer group, changelog topic prefix and data folder)
is ``brokerapp-<branch>``, so each branch is its own worker kind and a slow branch never
holds back a fast one. Agents are registered explicitly by their module (autodiscovery is off:
it swallows import errors).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import faust

from brokerapp.model.settings import Settings, load_settings


def kafka_url(bootstrap: str) -> str:
    """Return Faust's broker URL (``kafka://h1:p1;h2:p2``) for bootstrap servers."""
    return ";".join(f"kafka://{address.strip()}" for address in bootstrap.split(","))


def create_app(settings: Settings, branch: str, web_port: int | None = None) -> faust.App:
    """Build the Faust app of one branch.

    Parameters
    ----------
    settings : Settings
        The one settings object.
    branch : str
        Stable branch name (``gateway``, ``ssfilter`` ...); it becomes the app id suffix, so
        renaming it orphans the branch's committed offsets and tables.
    web_port : int, optional
        Port of this branch's web view (default ``settings.web_port``); each worker on a host
        needs its own.

    Returns
    -------
    faust.App
        Configured, with no agents yet; its state folder's parent exists.
    """
    settings.faust_dir.mkdir(parents=True, exist_ok=True)
    app_id = f"{settings.app_prefix}-{branch}"
    return faust.App(
        app_id,
        broker=kafka_url(settings.kafka_bootstrap),
        store=settings.store,
        datadir=str(settings.faust_dir / branch),
        web_bind=settings.web_bind,
        web_port=settings.web_port if web_port is None else web_port,
        web_host=settings.web_bind,
        autodiscover=False,
        producer_max_request_size=settings.max_message_bytes,
        producer_linger=settings.producer_linger_ms / 1000.0,
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_compression_type=(
            None if settings.local_compression == "none" else settings.local_compression
        ),
        consumer_max_fetch_size=settings.max_message_bytes,
        broker_max_poll_records=500,
        topic_allow_declare=True,
        topic_replication_factor=settings.replication_factor,
        consumer_group_instance_id=f"{app_id}-{settings.instance_id}",
    )


def lazy_app(module_name: str, build: Callable[[Settings], faust.App]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` that builds the module's ``app`` on first access.

    ``faust -A agents.<branch> worker`` reads ``agents.<branch>.app``; building it then, and
    not at import, keeps the environment unread at import time (tests import the module and
    call ``build(settings)`` with their own settings).

    Parameters
    ----------
    module_name : str
        The agent module's ``__name__``.
    build : callable
        ``build(settings) -> faust.App`` of that module.

    Returns
    -------
    callable
        To assign to the module's ``__getattr__``.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module attribute protocol
        if name == "app":
            module = sys.modules[module_name]
            app = build(load_settings())
            module.app = app
            return app
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
