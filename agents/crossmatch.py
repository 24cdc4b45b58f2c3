"""The crossmatch worker: a static catalogue matched on the non-solar stream.

Launch with ``faust -A agents.crossmatch worker``. A processing node
(:func:`brokerapp.runtime.node.build_node`, app id ``<app_prefix>-crossmatch``) reading
``watchlist_source_topic`` (the non-solar stream) with the chain ``crossmatch_chain``
(default ``deploy/chains/crossmatch.toml``): ``catalogue_match`` loads the catalogue into a
declination-zone index when the chain loads and annotates each alert with its nearest
source(s) within the radius; ``emit_annotations`` sends those annotations to
``annotations_topic``. Editing the chain file (another catalogue, radius or columns) takes
effect without a restart. Status: ``/crossmatch/`` and ``/crossmatch/status.json``.
"""

from __future__ import annotations

import faust

from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.node import build_node

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the crossmatch app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        The app ``faust -A agents.crossmatch worker`` runs.
    """
    return build_node(
        settings,
        "crossmatch",
        settings.crossmatch_chain,
        {"annotations": settings.annotations_topic},
        settings.crossmatch_web_port,
        source_topic=settings.watchlist_source_topic,
    )


__getattr__ = lazy_app(__name__, build)
