r"""Lean alert bodies: the image cutouts taken out of a bare Avro body, without decoding it.

The three image cutouts (science, template, difference) are most of an alert's bytes: 89 % of
the ZTF samples' (45 kB whole, 4.9 kB lean), 99.6 % of the Rubin samples' (121 kB, 0.5 kB;
``bench/bench_lean.py``). Branches that look at the catalogue fields
need none of them, so internal streams can carry the alert without its cutouts ("lean"),
with the cutouts kept once elsewhere (:func:`encode_cutouts`, a compacted topic keyed by
alert ID), and the 7-day buffer keeping the whole alerts.

A lean body is written with the same writer schema as the original, so it keeps its schema ID
and decodes with the same codec: every cutout field of the schema is, in ZTF's and Rubin's
alert schemas, a union with ``"null"`` (ZTF 4.x ``["null", cutout]``, ZTF 3.x
``[cutout, "null"]``, Rubin ``["null", "bytes"]``), so each cutout is replaced by the union
index of its null branch, one byte (zigzag varint ``2 * index``: ``\x00`` for index 0,
``\x02`` for index 1), every other byte copied as it is. Decoding the lean body gives the
original record with the cutout fields set to None.

:class:`CutoutStripper` is compiled once per schema with the field reader's steps
(:mod:`brokerapp.wire.avrokey.ops`): one walk over the top-level fields before the first
cutout (a run of regular expressions and jumps, as the key reader's), then the cutouts read
whole and the fields between and after them walked over, in a single pass that checks the
body ends where the record ends. The cutout field names come from the survey profiles
(:attr:`~brokerapp.model.profiles.SurveyProfile.cutout_fields`); the survey of a schema is
the first profile whose ``key_paths.survey_fields`` are all top-level fields, as for the key
reader. Official ZTF and Rubin schemas end with their cutouts, so the lean body is the bytes
before them and three bytes; the re-serialised Rubin samples in ``tests/data/lsst`` have two
fields after them, copied.

A cutouts record (:data:`CUTOUTS_SCHEMA`, a bare Avro body with no framing: the schema is
fixed here, versioned by its name) holds the survey, the alert ID and the three stamps (bytes
or null; ZTF's ``stampData``, gzipped FITS, and its ``fileName``, Rubin's FITS bytes).

A body that cannot be walked raises :class:`~brokerapp.wire.codecs.errors.DecodeError`
(``mode`` as given, ``schema_id`` None: the caller knows it); so does compiling for a schema
of no known survey, or one whose cutout field is not nullable.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro

from brokerapp.model.profiles import CUTOUT_KINDS, PROFILES, SurveyProfile
from brokerapp.wire.avrokey.graph import AvroType, KeyPathError, schema_graph
from brokerapp.wire.avrokey.ops import MalformedError, Op, skip_sequence, value_reader
from brokerapp.wire.avrokey.reader import StepCompiler
from brokerapp.wire.codecs.errors import AVRO_ERRORS, DecodeError, EncodeError, describe
from brokerapp.wire.codecs.schemas import ParsedSchema

__all__ = [
    "CUTOUTS_SCHEMA",
    "CutoutStripper",
    "CutoutStrippers",
    "Cutouts",
    "decode_cutouts",
    "encode_cutouts",
]

_MAX_ONE_BYTE_INDEX = 63
"""Largest union index whose zigzag varint is one byte (``2 * 63 = 126``)."""

CUTOUTS_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "cutouts_v1",
    "namespace": "brokerapp",
    "doc": "The image cutouts of one alert, kept once (value of the cutouts topic).",
    "fields": [
        {"name": "survey", "type": "string", "doc": "ztf or lsst"},
        {"name": "alert_id", "type": "long", "doc": "ZTF candid; LSST diaSourceId"},
        *(
            {"name": kind, "type": ["null", "bytes"], "default": None, "doc": f"{kind} stamp"}
            for kind in CUTOUT_KINDS
        ),
        {
            "name": "file_names",
            "type": {"type": "map", "values": "string"},
            "default": {},
            "doc": "stamp file name by kind, where the survey gives one (ZTF)",
        },
    ],
}
"""Schema of a cutouts record: survey, alert ID, the three stamps by kind, their file names."""
_CUTOUTS_PARSED = fastavro.parse_schema(CUTOUTS_SCHEMA)


@dataclass(frozen=True, slots=True)
class Cutouts:
    """The image cutouts of one alert.

    Attributes
    ----------
    survey : str
        ``"ztf"`` or ``"lsst"``.
    alert_id : int
        ZTF ``candid``; LSST ``diaSource.diaSourceId``.
    images : Mapping of str to bytes or None
        Stamp by kind (``"science"``, ``"template"``, ``"difference"``): ZTF's gzipped FITS
        ``stampData``, Rubin's FITS bytes; None when the alert has none.
    file_names : Mapping of str to str
        File name of a stamp by kind, where the survey gives one (ZTF's ``fileName``).
    """

    survey: str
    alert_id: int
    images: Mapping[str, bytes | None]
    file_names: Mapping[str, str]


def encode_cutouts(cutouts: Cutouts) -> bytes:
    """Encode a cutouts record as a bare Avro body of :data:`CUTOUTS_SCHEMA`.

    Parameters
    ----------
    cutouts : Cutouts
        The record.

    Returns
    -------
    bytes
        The body.

    Raises
    ------
    EncodeError
        If a stamp is not bytes or None, or the alert ID is not an int.
    """
    record = {
        "survey": cutouts.survey,
        "alert_id": cutouts.alert_id,
        **{kind: cutouts.images.get(kind) for kind in CUTOUT_KINDS},
        "file_names": dict(cutouts.file_names),
    }
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, _CUTOUTS_PARSED, record)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, struct.error) as exc:
        raise EncodeError("cutouts", f"bad cutouts record: {describe(exc)}") from exc
    return buffer.getvalue()


def decode_cutouts(data: bytes) -> Cutouts:
    """Decode a cutouts record written by :func:`encode_cutouts`.

    Parameters
    ----------
    data : bytes
        The bare Avro body.

    Returns
    -------
    Cutouts
        The record.

    Raises
    ------
    DecodeError
        ``mode="cutouts"`` if the bytes are truncated, corrupt or longer than the record.
    """
    buffer = io.BytesIO(data)
    try:
        record: Any = fastavro.schemaless_reader(buffer, _CUTOUTS_PARSED, None)
    except AVRO_ERRORS as exc:
        raise DecodeError("cutouts", f"bad cutouts record: {describe(exc)}") from exc
    if buffer.tell() != len(data):
        raise DecodeError("cutouts", f"{len(data) - buffer.tell()} trailing bytes after record")
    return Cutouts(
        survey=record["survey"],
        alert_id=record["alert_id"],
        images={kind: record[kind] for kind in CUTOUT_KINDS},
        file_names=record["file_names"],
    )


def _profile_of(root: AvroType) -> SurveyProfile | None:
    top = {name for name, _child in root.fields} if root.kind == "record" else set()
    for profile in PROFILES:
        if set(profile.key_paths.survey_fields) <= top:
            return profile
    return None


def _null_index(node: AvroType) -> int | None:
    if node.kind != "union":
        return None
    for index, branch in enumerate(node.branches):
        if branch.kind == "null":
            return index
    return None


_CUT = "cut"
_WALK = "walk"


class CutoutStripper:
    """Take the cutouts out of bare Avro bodies of one alert schema, in one pass.

    Parameters
    ----------
    schema : ParsedSchema or dict or list or str
        The writer schema of the bodies (see :class:`~brokerapp.wire.avrokey.KeyReader`).
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised.

    Attributes
    ----------
    survey : str
        The survey profile's name (``"ztf"``, ``"lsst"``).
    fields : tuple of str
        The cutout fields of this schema, in encoding order (Rubin schemas before 6.1 have no
        ``cutoutScience``); empty when it has none (bodies then come back unchanged).
    kinds : Mapping of str to str
        Kind (``"science"`` ...) of each field of :attr:`fields`.
    trailing : bool
        Whether the cutout fields are the last top-level fields, the lean body then being a
        prefix of the body and one byte per cutout.

    Raises
    ------
    DecodeError
        If the schema is of no survey profile, is no valid schema, or has a cutout field that
        is not a union with null (a lean body could not say "no cutout").
    """

    def __init__(self, schema: ParsedSchema | Mapping | list | str, mode: str = "confluent"):
        self.mode = mode
        try:
            root = schema_graph(schema)
        except (KeyPathError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError(mode, f"cannot compile a cutout stripper: {exc}") from exc
        self.name = root.name or root.kind
        profile = _profile_of(root)
        if profile is None:
            raise DecodeError(mode, f"schema {self.name} is of no known survey: no cutouts")
        self.survey = profile.survey
        by_name = {name: kind for kind, name in profile.cutout_fields.items()}
        positions = [i for i, (name, _child) in enumerate(root.fields) if name in by_name]
        self.fields = tuple(root.fields[i][0] for i in positions)
        self.kinds = {name: by_name[name] for name in self.fields}
        self.trailing = bool(positions) and positions[-1] == len(root.fields) - 1
        self._run = self._compile(root, positions) if positions else None

    def _compile(self, root: AvroType, positions: list[int]) -> Callable[..., Any]:
        compiler = StepCompiler()
        fields = root.fields
        first = positions[0]
        prefix = skip_sequence([compiler.skipper(child) for _n, child in fields[:first]]).fast()
        plan: list[tuple[str, Any, Any, bytes]] = []
        run: list[Any] = []
        for i in range(first, len(fields)):
            name, child = fields[i]
            if i not in positions:
                run.append(compiler.skipper(child))
                continue
            if run:
                plan.append((_WALK, skip_sequence(run).fast(), None, b""))
                run = []
            index = _null_index(child)
            if index is None or index > _MAX_ONE_BYTE_INDEX:
                reason = f"cutout field {name} of {self.name} is not a union with null"
                raise DecodeError(self.mode, reason)
            plan.append((_CUT, name, value_reader(child, name), bytes([2 * index])))
        if run:
            plan.append((_WALK, skip_sequence(run).fast(), None, b""))
        steps = tuple(plan)
        mode = self.mode
        context = f"stripping the cutouts of {self.name}"

        def run_plan(body: Any, start: int) -> tuple[bytes, dict[str, Any]]:
            scratch: list = []
            cutouts: dict[str, Any] = {}
            try:
                pos = prefix(body, start, scratch)
                parts = [body[:pos]]
                for kind, what, read, null in steps:
                    if kind is _CUT:
                        cutouts[what], pos = read(body, pos)
                        parts.append(null)
                    else:
                        walk: Op = what
                        end = walk(body, pos, scratch)
                        parts.append(body[pos:end])
                        pos = end
            except (IndexError, struct.error, OverflowError) as exc:
                reason = f"truncated Avro body: ran past its {len(body) - start} bytes {context}"
                raise DecodeError(mode, reason) from exc
            except MalformedError as exc:
                raise DecodeError(mode, f"corrupt Avro body: {exc} {context}") from exc
            except UnicodeDecodeError as exc:
                reason = f"corrupt Avro body: invalid UTF-8 ({exc.reason}) {context}"
                raise DecodeError(mode, reason) from exc
            except RecursionError as exc:
                raise DecodeError(mode, f"corrupt Avro body: nested too deep {context}") from exc
            if pos > len(body):
                reason = f"truncated Avro body: ran past its {len(body) - start} bytes {context}"
                raise DecodeError(mode, reason)
            if pos < len(body):
                raise DecodeError(mode, f"{len(body) - pos} trailing bytes after record {context}")
            return b"".join(parts), cutouts

        return run_plan

    def strip(
        self, body: bytes | bytearray | memoryview, start: int = 0
    ) -> tuple[bytes, dict[str, Any]]:
        """Return the lean body and the cutouts taken out of it.

        Parameters
        ----------
        body : bytes or bytearray or memoryview
            One bare Avro body of the schema from ``start`` on, ending with the record.
        start : int, optional
            Offset of the record, e.g. 5 for a whole Confluent-framed message; ``body[:start]``
            (the framing) is kept at the head of the lean bytes as it is.

        Returns
        -------
        tuple of (bytes, dict of str to Any)
            The lean bytes (``body[:start]``, then the body with every cutout field null),
            and each cutout field's value by field name as fastavro decodes it: ``bytes``
            (Rubin), a ``{"fileName", "stampData"}`` dict (ZTF), or None.

        Raises
        ------
        DecodeError
            If the body ends before the record does, has bytes after it, or the walked bytes
            are not valid Avro.
        """
        if self._run is None:
            end = len(body)
            if start > end:
                raise DecodeError(self.mode, f"no body after {start} bytes of framing")
            return bytes(body), {}
        return self._run(body, start)

    def cutouts(self, values: Mapping[str, Any], alert_id: int) -> Cutouts:
        """Make the cutouts record of one alert from what :meth:`strip` took out.

        Parameters
        ----------
        values : Mapping
            The cutout field values returned by :meth:`strip`.
        alert_id : int
            The alert's ID (e.g. read with :class:`~brokerapp.wire.avrokey.KeyReader`).

        Returns
        -------
        Cutouts
            Every kind present (None where the alert or schema has no such cutout).
        """
        images: dict[str, bytes | None] = dict.fromkeys(CUTOUT_KINDS)
        names: dict[str, str] = {}
        for field_name, value in values.items():
            kind = self.kinds[field_name]
            if isinstance(value, Mapping):  # ZTF's {"fileName", "stampData"}
                images[kind] = value.get("stampData")
                if value.get("fileName") is not None:
                    names[kind] = value["fileName"]
            else:
                images[kind] = value
        return Cutouts(self.survey, alert_id, images, names)

    def __repr__(self) -> str:
        return f"CutoutStripper({self.name}: {', '.join(self.fields) or 'no cutouts'})"


class CutoutStrippers:
    """Compiled :class:`CutoutStripper` by schema fingerprint: each schema compiled once.

    Parameters
    ----------
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised.

    Attributes
    ----------
    mode : str
        As given.
    compiles : int
        Number of schemas compiled (failures included; a failure is remembered).
    """

    def __init__(self, mode: str = "confluent"):
        self.mode = mode
        self.compiles = 0
        self._by_fp: dict[str, CutoutStripper | DecodeError] = {}

    def for_schema(self, schema: ParsedSchema) -> CutoutStripper:
        """Return the stripper of ``schema``, compiling it on first use.

        Parameters
        ----------
        schema : ParsedSchema
            The writer schema of the bodies.

        Returns
        -------
        CutoutStripper
            Its stripper.

        Raises
        ------
        DecodeError
            If the schema cannot be stripped (every time it is asked).
        """
        found = self._by_fp.get(schema.fingerprint)
        if found is None:
            self.compiles += 1
            try:
                found = CutoutStripper(schema, self.mode)
            except DecodeError as exc:
                found = exc
            self._by_fp[schema.fingerprint] = found
        if isinstance(found, DecodeError):
            raise DecodeError(found.mode, found.reason, found.schema_id)
        return found

    def strip(
        self, schema: ParsedSchema, body: bytes | bytearray | memoryview, start: int = 0
    ) -> tuple[bytes, dict[str, Any]]:
        """Strip one body: :meth:`CutoutStripper.strip` with the stripper of ``schema``."""
        return self.for_schema(schema).strip(body, start)
