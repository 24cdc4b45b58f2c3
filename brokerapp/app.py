"""The Faust app factory every agent module uses.

Each branch calls ``create_app(settings, "<branch>")`` once in its own module under
``agents/``: the app id (and so the consumer group, changelog topic prefix and data folder)
is ``brokerapp-<branch>``, so each branch is its own worker kind and a slow branch never
holds back a fast one. Agents are registered explicitly by their module (autodiscovery is off:
it swallows import errors).
"""

from __future__ import annotations

import faust

from brokerapp.settings import Settings


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
        consumer_max_fetch_size=settings.max_message_bytes,
        broker_max_poll_records=500,
        topic_allow_declare=True,
        consumer_group_instance_id=f"{app_id}-{settings.instance_id}",
    )
