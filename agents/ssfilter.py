"""The ssfilter worker: the solar-system split, Stage 1's first fast branch.

Launch with ``faust -A agents.ssfilter worker``. A processing node
(:func:`brokerapp.runtime.node.build_node`, app id ``<app_prefix>-ssfilter``) whose chain file
(``ssfilter_chain``, default ``deploy/chains/ssfilter.toml``) holds the ``solar_system``
processor: every alert of ``alerts`` lands in exactly one of ``solar_topic``
(``alerts-solar``) and ``nonsolar_topic`` (``alerts-nonsolar``), its bytes, key and headers
unchanged. Status: ``/ssfilter/`` and ``/ssfilter/status.json`` on ``ssfilter_web_port``.
"""

from __future__ import annotations

import faust

from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.node import build_node

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the ssfilter app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        The app ``faust -A agents.ssfilter worker`` runs.
    """
    return build_node(
        settings,
        "ssfilter",
        settings.ssfilter_chain,
        {"solar": settings.solar_topic, "nonsolar": settings.nonsolar_topic},
        settings.ssfilter_web_port,
    )


__getattr__ = lazy_app(__name__, build)
