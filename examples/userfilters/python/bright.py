"""Example user filter (Python SDK): pass ZTF alerts brighter than a magnitude limit.

Run by the broker as ``python3 -m brokerapp.userfilter bright:Bright`` inside its sandbox,
with this folder as ``/code``. Parameters (from the runner's ``start``): ``mag_limit``
(default 18.0) and ``summary`` (default false: pass the alert with annotations; true: emit a
small record to the ``summary`` stream instead).

Try it by hand, outside any sandbox, with the SDK's frames::

    PYTHONPATH=. python3 -m brokerapp.userfilter bright:Bright < frames.bin
"""

from brokerapp import userfilter


class Bright(userfilter.AlertFilter):
    """Pass alerts whose ``candidate.magpsf`` is below ``mag_limit``."""

    input = "json"

    def setup(self, params):
        """Read the parameters."""
        self.limit = float(params.get("mag_limit", 18.0))
        self.summary = bool(params.get("summary", False))

    def filter(self, alert):
        """Answer for one alert."""
        candidate = alert.get("candidate") or {}
        magpsf = candidate.get("magpsf")
        if magpsf is None or magpsf >= self.limit:
            return userfilter.Drop()
        if self.summary:
            record = {"objectId": alert.get("objectId"), "magpsf": magpsf}
            return userfilter.Emit("summary", record)
        return userfilter.Pass(annotations={"magpsf": magpsf, "mag_limit": self.limit})


@userfilter.filter()
def bright18(alert):
    """Pass alerts brighter than 18 (the same as a decorated function), with a fixed limit of 18."""
    magpsf = (alert.get("candidate") or {}).get("magpsf")
    return magpsf is not None and magpsf < 18.0
