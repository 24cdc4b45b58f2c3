"""A generic processing node: any chain of processors, as its own branch.

Launch with ``BROKER_NODE_NAME=<name> BROKER_NODE_CHAIN=<file.toml> faust -A agents.node
worker``: app id ``<app_prefix>-<name>`` (its own consumer group), the chain of that file
(reloaded when it changes), stream ``s`` written to topic ``<topic_prefix><name>-s``. Status
on ``node_web_port``: ``/<name>/`` and ``/<name>/status.json``. Several nodes on one host need
distinct names, ports (``BROKER_NODE_WEB_PORT``) and state folders.
"""

from __future__ import annotations

import faust

from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.node import build_node

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the node's app from ``node_name``, ``node_chain`` and ``node_web_port``.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        The app ``faust -A agents.node worker`` runs.
    """
    return build_node(settings, settings.node_name, settings.node_chain, {}, settings.node_web_port)


__getattr__ = lazy_app(__name__, build)
