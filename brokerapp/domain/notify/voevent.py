"""VOEvent 2.0 packets of notices, and the VOEvent Transport Protocol's messages.

A packet (IVOA VOEvent 2.0, validated with :func:`validate` against the schema Comet ships,
``comet/schema/VOEvent-v2.0.xsd``, read from the installed package, not copied)::

    <voe:VOEvent ivorn="ivo://<authority>/<stream>#<kind>-<alert ID>" role="observation"
                 version="2.0">
      <Who> AuthorIVORN ivo://<authority>, Date (the alert's time), Author shortName and
            contactEmail </Who>
      <What> Params survey, alert_id, object_id, kind; per match a Group "match" (type the
             source) with Params source, watchlist_id, entry, separation [arcsec] and the
             match's other columns; a Reference to the alert's URL </What>
      <WhereWhen> ICRS position [deg] and ISOTime (UTC) of the detection
                  (coord system UTC-ICRS-TOPO) </WhereWhen>
      <How> the broker's description </How>
      <Why> Concept "watchlist match" or "catalogue crossmatch" </Why>
    </voe:VOEvent>

The IVORN depends only on the notice, so a replayed alert gives the same IVORN (Comet's
"previously seen" check then drops the repeat).

VTP (Allan, Denny & Swinbank, "VOEvent Transport Protocol", IVOA note 2009/2017): every
message is a 4-byte big-endian length then that many bytes of XML. A broker sends events
and, periodically, a Transport ``role="iamalive"`` message; a subscriber answers each event
with a Transport ``role="ack"`` (``Origin`` the event's IVORN) or ``"nak"``, and each
iamalive with an iamalive. :func:`transport` builds those messages, :func:`parse_transport`
reads them, :func:`frame` and :class:`Deframer` do the length prefix.
"""

from __future__ import annotations

import importlib.resources
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from lxml import etree

from brokerapp.domain.notify.notices import Notice

__all__ = [
    "TRANSPORT_NS",
    "VOEVENT_NS",
    "Deframer",
    "PacketSettings",
    "TransportMessage",
    "VOEventError",
    "frame",
    "ivorn",
    "mjd_to_iso",
    "packet",
    "parse_transport",
    "transport",
    "validate",
]

VOEVENT_NS = "http://www.ivoa.net/xml/VOEvent/v2.0"
TRANSPORT_NS = "http://www.telescope-networks.org/xml/Transport/v1.1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
LENGTH = struct.Struct(">I")
"""The VTP length prefix."""
MAX_MESSAGE_BYTES = 1 << 24
"""Longest VTP message accepted (bytes); a longer prefix is a protocol error."""
MJD_UNIX_EPOCH = 40587.0
"""MJD of 1970-01-01T00:00:00."""
TAI_MINUS_UTC_S = 37.0
"""TAI - UTC since 2017-01-01 (no leap second announced since): LSST times are TAI."""
SECONDS_PER_DAY = 86400.0


class VOEventError(ValueError):
    """A packet the VOEvent 2.0 schema refuses (the schema's first message)."""


@dataclass(frozen=True)
class PacketSettings:
    """What every packet of one broker carries."""

    authority: str
    stream: str
    author: str
    contact_email: str
    alert_url_template: str

    def alert_url(self, notice: Notice) -> str:
        """Return the link back to the notice's alert."""
        return self.alert_url_template.format(
            survey=notice.survey, alert_id=notice.alert_id, object_id=notice.object_id or ""
        )


def ivorn(settings: PacketSettings, notice: Notice) -> str:
    """Return the notice's IVORN: ``ivo://<authority>/<stream>#<kind>-<alert ID>``."""
    return f"ivo://{settings.authority}/{settings.stream}#{notice.key}"


def mjd_to_iso(mjd: float, survey: str) -> str:
    """Return an MJD as ISO 8601 UTC (``YYYY-MM-DDTHH:MM:SS.ffffff``); LSST MJDs are TAI."""
    seconds = (mjd - MJD_UNIX_EPOCH) * SECONDS_PER_DAY
    if survey == "lsst":
        seconds -= TAI_MINUS_UTC_S
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _param(parent: Any, name: str, value: Any, unit: str | None = None) -> None:
    attrs = {"name": name, "value": "" if value is None else str(value)}
    if isinstance(value, bool):
        attrs["dataType"] = "string"
    elif isinstance(value, int):
        attrs["dataType"] = "int"
    elif isinstance(value, float):
        attrs["dataType"] = "float"
    else:
        attrs["dataType"] = "string"
    if unit:
        attrs["unit"] = unit
    etree.SubElement(parent, "Param", attrs)


def packet(settings: PacketSettings, notice: Notice, issued: datetime | None = None) -> bytes:
    """Return the VOEvent 2.0 packet of a notice (UTF-8 XML with its declaration).

    Parameters
    ----------
    settings : PacketSettings
        Authority, stream, author, alert link.
    notice : Notice
        The annotated alert.
    issued : datetime, optional
        The ``Who/Date`` (default: the detection's time, so the packet depends only on the
        notice and a replay is byte-identical).

    Returns
    -------
    bytes
        The packet.
    """
    when = (
        mjd_to_iso(notice.mjd, notice.survey)
        if notice.mjd is not None
        else datetime.fromtimestamp(0, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )
    root = etree.Element(
        f"{{{VOEVENT_NS}}}VOEvent",
        {
            "ivorn": ivorn(settings, notice),
            "role": "observation",
            "version": "2.0",
            f"{{{XSI_NS}}}schemaLocation": (
                f"{VOEVENT_NS} http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd"
            ),
        },
        nsmap={"voe": VOEVENT_NS, "xsi": XSI_NS},
    )
    who = etree.SubElement(root, "Who")
    etree.SubElement(who, "AuthorIVORN").text = f"ivo://{settings.authority}"
    etree.SubElement(who, "Date").text = (
        issued.strftime("%Y-%m-%dT%H:%M:%S") if issued is not None else when.split(".")[0]
    )
    author = etree.SubElement(who, "Author")
    etree.SubElement(author, "shortName").text = settings.author
    etree.SubElement(author, "contactEmail").text = settings.contact_email

    what = etree.SubElement(root, "What")
    _param(what, "survey", notice.survey)
    _param(what, "alert_id", notice.alert_id)
    _param(what, "object_id", notice.object_id)
    _param(what, "kind", notice.kind)
    for match in notice.matches:
        group = etree.SubElement(what, "Group", {"name": "match", "type": match.source})
        _param(group, "source", match.source)
        _param(group, "watchlist_id", match.watchlist_id)
        _param(group, "entry", match.entry)
        _param(group, "separation", match.separation_arcsec, unit="arcsec")
        for name, value in sorted(match.detail.items()):
            _param(group, str(name), value)
    etree.SubElement(
        what, "Reference", {"uri": settings.alert_url(notice), "type": "url", "meaning": "alert"}
    )

    location = etree.SubElement(etree.SubElement(root, "WhereWhen"), "ObsDataLocation")
    etree.SubElement(location, "ObservatoryLocation", {"id": "GEOSURFACE"})
    observation = etree.SubElement(location, "ObservationLocation")
    etree.SubElement(observation, "AstroCoordSystem", {"id": "UTC-ICRS-TOPO"})
    coords = etree.SubElement(observation, "AstroCoords", {"coord_system_id": "UTC-ICRS-TOPO"})
    instant = etree.SubElement(etree.SubElement(coords, "Time", {"unit": "s"}), "TimeInstant")
    etree.SubElement(instant, "ISOTime").text = when
    position = etree.SubElement(coords, "Position2D", {"unit": "deg"})
    etree.SubElement(position, "Name1").text = "RA"
    etree.SubElement(position, "Name2").text = "Dec"
    value = etree.SubElement(position, "Value2")
    etree.SubElement(value, "C1").text = repr(notice.ra)
    etree.SubElement(value, "C2").text = repr(notice.dec)
    etree.SubElement(position, "Error2Radius").text = "0.0"

    how = etree.SubElement(root, "How")
    etree.SubElement(how, "Description").text = f"{settings.author}: {notice.kind} annotation"
    why = etree.SubElement(root, "Why")
    concept = "watchlist match" if notice.kind == "watchlist" else "catalogue crossmatch"
    etree.SubElement(why, "Concept").text = concept
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@cache
def _schema(name: str) -> etree.XMLSchema:
    path = importlib.resources.files("comet") / "schema" / name
    with importlib.resources.as_file(path) as file:
        return etree.XMLSchema(etree.parse(str(file)))


def validate(data: bytes, schema: str = "VOEvent-v2.0.xsd") -> None:
    """Check an XML document against the VOEvent 2.0 (or a Transport) schema.

    Parameters
    ----------
    data : bytes
        The document.
    schema : str
        ``VOEvent-v2.0.xsd`` or ``transport-1.1.xsd`` (the schemas Comet ships).

    Raises
    ------
    VOEventError
        Not well-formed, or invalid (the schema's first error).
    """
    xsd = _schema(schema)
    try:
        document = etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        raise VOEventError(f"not well-formed XML: {exc}") from exc
    if not xsd.validate(document):
        raise VOEventError(str(xsd.error_log.last_error))


@dataclass(frozen=True)
class TransportMessage:
    """A VTP Transport message as read: role, Origin and Response."""

    role: str
    origin: str | None
    response: str | None


def transport(role: str, origin: str, response: str | None = None, now: datetime | None = None):
    """Return a VTP Transport message (``iamalive``, ``ack``, ``nak``) as bytes, unframed.

    Parameters
    ----------
    role : str
        The message's role.
    origin : str
        ``Origin``: the sender's IVORN for an iamalive, the event's IVORN for an ack.
    response : str, optional
        ``Response``: the responder's IVORN.
    now : datetime, optional
        ``TimeStamp`` (default: the current time).
    """
    root = etree.Element(
        f"{{{TRANSPORT_NS}}}Transport",
        {"role": role, "version": "1.0"},
        nsmap={"trn": TRANSPORT_NS},
    )
    etree.SubElement(root, "Origin").text = origin
    if response:
        etree.SubElement(root, "Response").text = response
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    etree.SubElement(root, "TimeStamp").text = stamp
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def parse_transport(data: bytes) -> TransportMessage | None:
    """Read a VTP Transport message; None if ``data`` is something else (e.g. a VOEvent).

    Raises
    ------
    VOEventError
        Not well-formed XML.
    """
    try:
        root = etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        raise VOEventError(f"not well-formed XML: {exc}") from exc
    if etree.QName(root).localname != "Transport":
        return None
    return TransportMessage(
        root.get("role", ""), root.findtext("Origin"), root.findtext("Response")
    )


def frame(message: bytes) -> bytes:
    """Return a VTP message with its 4-byte big-endian length prefix."""
    return LENGTH.pack(len(message)) + message


class Deframer:
    """Cuts a VTP byte stream into messages (feed it what the socket reads)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every message now complete.

        Raises
        ------
        VOEventError
            A length prefix over :data:`MAX_MESSAGE_BYTES`.
        """
        self._buffer += data
        out = []
        while len(self._buffer) >= LENGTH.size:
            (size,) = LENGTH.unpack_from(self._buffer)
            if size > MAX_MESSAGE_BYTES:
                raise VOEventError(f"VTP message of {size} bytes announced")
            if len(self._buffer) < LENGTH.size + size:
                break
            out.append(bytes(self._buffer[LENGTH.size : LENGTH.size + size]))
            del self._buffer[: LENGTH.size + size]
        return out
