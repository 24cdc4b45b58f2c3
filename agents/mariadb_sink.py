"""The MariaDB sink worker: candidates, solar-system candidates, annotations and objects.

Launch with ``faust -A agents.mariadb_sink worker``. App id ``<app_prefix>-mariadb-sink``,
one agent per table, each upserting the records of its topic in batches and committing
offsets only after MariaDB has stored them (:mod:`brokerapp.runtime.sink` describes the tables, the
batching, the retries and the dead letters). Create the tables first with
``brokerapp db migrate``. Status: ``/mariadb-sink/`` and ``/mariadb-sink/status.json`` on
``mariadb_sink_web_port``.
"""

from __future__ import annotations

import faust

from brokerapp.model.settings import Settings
from brokerapp.runtime.app import lazy_app
from brokerapp.runtime.sink import build_sink

__all__ = ["build"]


def build(settings: Settings) -> faust.App:
    """Build the MariaDB sink app.

    Parameters
    ----------
    settings : Settings
        The one settings object.

    Returns
    -------
    faust.App
        The app ``faust -A agents.mariadb_sink worker`` runs.
    """
    return build_sink(settings, "mariadb")


__getattr__ = lazy_app(__name__, build)
