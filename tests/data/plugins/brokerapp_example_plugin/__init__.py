"""A stand-in external package adding alert processors (``tag_bright``, ``slow_down``).

Tests put ``tests/data/plugins`` on ``sys.path`` (or ``PYTHONPATH``) so that
``importlib.metadata`` finds ``brokerapp_example_plugin-0.1.dist-info`` and its entry point
``tag_bright = brokerapp_example_plugin:TagBright`` in the group ``brokerapp.processors``.
"""

from __future__ import annotations

import time
from typing import Any

from brokerapp.domain.processors import AlertProcessor, ChainConfigError, Pass
from brokerapp.model.alert import Alert

__all__ = ["SlowDown", "TagBright"]


class TagBright(AlertProcessor):
    """Annotate alerts brighter than a magnitude with ``{"bright": True, "magnitude": m}``.

    Parameters
    ----------
    brighter_than : float
        Alerts with a magnitude below this are tagged.
    **options
        Anything else is a ChainConfigError.
    """

    name = "tag_bright"

    def __init__(self, *, brighter_than: float = 18.0, **options: Any) -> None:
        super().__init__(**options)
        if isinstance(brighter_than, bool) or not isinstance(brighter_than, int | float):
            raise ChainConfigError(f"tag_bright: brighter_than must be a number: {brighter_than!r}")
        self.brighter_than = float(brighter_than)

    def process(self, alert: Alert) -> Pass:
        """Pass the alert, tagged when it is bright.

        Parameters
        ----------
        alert : Alert
            The alert.

        Returns
        -------
        Pass
            Annotated when ``alert.view.magnitude < brighter_than``.
        """
        magnitude = alert.view.magnitude
        if magnitude is not None and magnitude < self.brighter_than:
            return Pass({"bright": True, "magnitude": magnitude})
        return Pass()


class SlowDown(AlertProcessor):
    """Pass every alert after blocking for a while: a deliberately slow branch for tests.

    Parameters
    ----------
    milliseconds : float
        Time spent per alert.
    **options
        Anything else is a ChainConfigError.
    """

    name = "slow_down"

    def __init__(self, *, milliseconds: float = 50.0, **options: Any) -> None:
        super().__init__(**options)
        self.seconds = float(milliseconds) / 1000.0

    def process(self, alert: Alert) -> Pass:
        """Sleep, then pass the alert unchanged."""
        time.sleep(self.seconds)
        return Pass()
