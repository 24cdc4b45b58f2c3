"""Object keys: the Kafka message key of an alert, read from its bare Avro body.

The gateway keys every message by the alert's object ID, so that all alerts of one object land
on one partition. The key is the UTF-8 of the decimal (or string) ID and equals
``str(profile.object_id(record))`` whenever the survey profile finds an object.

Which fields hold the IDs is the survey profiles' knowledge
(:class:`~brokerapp.model.profiles.KeyPaths`, one per profile): :func:`object_key_reader` picks
the profile whose ``survey_fields`` are all top-level fields of the schema (a schema has no
record to ask :meth:`~brokerapp.model.profiles.SurveyProfile.matches`; the sample LSST alerts
name their record ``topLevelRecord``, so the schema name cannot tell either), then compiles
two :class:`~brokerapp.wire.avrokey.reader.KeyReader` passes over the profile's paths that the
schema has and can read:

* the first pass reads the object ID field that comes first in the body (by default), or
  every object ID field in the profile's order (``exact=True``);
* only when those are all absent (as the profile's ``no_object`` says) a second pass reads, in
  order, the other object ID fields, then the profile's ``others``, then its alert IDs (absent
  only when null), and the first one present is the key.

The object ID fields of a profile name the same object when set, so both orders give the same
key for the surveys' own alerts; reading the earliest field first stops the common case among
the first bytes, where the profile's order may have to walk over the previous detections
(see ``bench/bench_avrokey.py``). The two differ only for alerts whose object IDs are both set
and disagree.

A schema that matches no profile raises :class:`~brokerapp.wire.codecs.errors.DecodeError`
from :func:`object_key_reader` (the schema came with a message, which should be
dead-lettered); :class:`KeyReaders` remembers that too. An alert with neither an object ID nor
an alert ID raises :class:`~brokerapp.wire.codecs.errors.DecodeError` when keyed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from brokerapp.model.profiles import PROFILES, SurveyProfile
from brokerapp.wire.avrokey.graph import (
    AvroType,
    KeyPathError,
    field_position,
    field_type,
    schema_graph,
)
from brokerapp.wire.avrokey.ops import READABLE
from brokerapp.wire.avrokey.reader import KeyReader
from brokerapp.wire.codecs.errors import DecodeError
from brokerapp.wire.codecs.schemas import ParsedSchema

__all__ = ["KeyFunction", "KeyReaders", "object_key_reader"]

KeyFunction = Callable[..., bytes]
"""``key(body, start=0) -> bytes``: the message key of one bare Avro body."""

_VOWEL_SOUNDING_LETTERS = frozenset("AEFHILMNORSX")
"""Capitals whose spoken name starts with a vowel: "an LSST alert", "a ZTF alert"."""


def _none(value: Any) -> bool:
    return value is None


@dataclass(frozen=True, slots=True)
class _Choice:
    """One candidate key field and what counts as "absent" for it."""

    path: tuple[str, ...]
    missing: Callable[[Any], bool]


def _key_function(
    schema: ParsedSchema | Mapping | list | str,
    first: list[_Choice],
    then: list[_Choice],
    mode: str,
    survey: str,
) -> KeyFunction:
    """Key function trying ``first`` (one pass), then ``then`` (a second pass) in order."""
    # The readers' compiled runners themselves: one call fewer per message than KeyReader.read.
    primary = KeyReader(schema, [choice.path for choice in first], mode)._run
    primary_missing = tuple(choice.missing for choice in first)
    fallback = KeyReader(schema, [c.path for c in then], mode)._run if then else None
    fallback_missing = tuple(choice.missing for choice in then)
    label = f"{survey} alert of schema {_graph_name(schema)}"

    def fallback_key(body: bytes | bytearray | memoryview, start: int = 0) -> bytes:
        if fallback is not None:
            for value, missing in zip(fallback(body, start), fallback_missing, strict=True):
                if not missing(value):
                    return str(value).encode()
        raise DecodeError(mode, f"{label} has no object ID and no alert ID")

    if len(primary_missing) == 1:  # the usual case, without the loop
        (missing_one,) = primary_missing

        def key_one(body: bytes | bytearray | memoryview, start: int = 0) -> bytes:
            (value,) = primary(body, start)
            if missing_one(value):
                return fallback_key(body, start)
            return str(value).encode()

        return key_one

    def key(body: bytes | bytearray | memoryview, start: int = 0) -> bytes:
        for value, missing in zip(primary(body, start), primary_missing, strict=True):
            if not missing(value):
                return str(value).encode()
        return fallback_key(body, start)

    return key


def _graph_name(schema: ParsedSchema | Mapping | list | str) -> str:
    if isinstance(schema, ParsedSchema):
        return schema.name
    root = schema_graph(schema)
    return root.name or root.kind


def _readable(root: AvroType, choices: Iterable[_Choice]) -> list[_Choice]:
    """Choices present in the schema whose field is a primitive (or union of them)."""
    kept = []
    for choice in choices:
        node = field_type(root, choice.path)
        if node is None:  # not in this schema
            continue
        kinds = [b.kind for b in node.branches] if node.kind == "union" else [node.kind]
        if all(kind in READABLE for kind in kinds):
            kept.append(choice)
    return kept


def _survey_of(top: set[str]) -> SurveyProfile | None:
    """Return the first profile whose survey fields are all among the top-level ``top``."""
    for profile in PROFILES:
        if set(profile.key_paths.survey_fields) <= top:
            return profile
    return None


def _unknown_survey(name: str) -> str:
    """Reason for a schema of no known survey, naming what each survey's schemas have."""
    alternatives = []
    for profile in PROFILES:
        label = profile.survey.upper()
        article = "an" if label[:1] in _VOWEL_SOUNDING_LETTERS else "a"
        fields = ", ".join(profile.key_paths.survey_fields)
        alternatives.append(f"{article} {label} alert ({fields})")
    return f"schema {name} is neither {' nor '.join(alternatives)}: no key reader"


def object_key_reader(
    schema: ParsedSchema | Mapping | list | str, *, exact: bool = False, mode: str = "confluent"
) -> KeyFunction:
    """Compile the message-key function of one alert schema of a known survey.

    Parameters
    ----------
    schema : ParsedSchema or dict or list or str
        The writer schema of the bodies (see :class:`~brokerapp.wire.avrokey.reader.KeyReader`).
    exact : bool, optional
        Read the object ID fields in the profile's order
        (:meth:`~brokerapp.model.profiles.SurveyProfile.object_id`'s) in the first pass, which
        may walk over the previous detections of every alert (when an object ID field comes
        after them). The default reads first the object ID field that comes first in the body, which
        gives the same key for the surveys' alerts at a fraction of the cost (see the module
        notes).
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised.

    Returns
    -------
    KeyFunction
        ``key(body, start=0) -> bytes``: the UTF-8 of the object ID, falling back as the
        module notes describe; raises :class:`~brokerapp.wire.codecs.errors.DecodeError` for a
        body that cannot be walked or that carries neither an object ID nor an alert ID.

    Raises
    ------
    DecodeError
        If the schema is of no survey profile (it lacks a profile's ``survey_fields``), or has
        none of its key fields; or is no valid schema at all.
    """
    try:
        root = schema_graph(schema)
    except (KeyPathError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError(mode, f"cannot compile a key reader: {exc}") from exc
    name = schema.name if isinstance(schema, ParsedSchema) else root.name or root.kind
    top = {field_name for field_name, _child in root.fields} if root.kind == "record" else set()
    profile = _survey_of(top)
    if profile is None:
        raise DecodeError(mode, _unknown_survey(name))
    paths = profile.key_paths
    objects = _readable(root, [_Choice(path, paths.no_object) for path in paths.objects])
    if exact or not objects:
        first = objects
        then = []
    else:
        earliest = min(objects, key=lambda choice: field_position(root, choice.path) or ())
        first = [earliest]
        then = [choice for choice in objects if choice is not earliest]
    then += _readable(root, [_Choice(path, paths.no_object) for path in paths.others])
    then += _readable(root, [_Choice(path, _none) for path in paths.alerts])
    if not first:
        first, then = then[:1], then[1:]
    if not first:
        reason = f"{profile.survey} schema {name} has no readable object or alert ID field"
        raise DecodeError(mode, reason)
    return _key_function(schema, first, then, mode, profile.survey)


class KeyReaders:
    """Compiled key functions by schema fingerprint: each schema is compiled once.

    Parameters
    ----------
    exact : bool, optional
        Passed to :func:`object_key_reader`.
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised.

    Attributes
    ----------
    exact : bool
        As given.
    mode : str
        As given.
    compiles : int
        Number of schemas compiled (distinct fingerprints, failures included).

    Notes
    -----
    A schema that cannot be keyed is remembered too, so its messages fail fast without
    compiling again. Like :class:`~brokerapp.wire.codecs.schemas.SchemaCache`, this holds one
    entry per distinct schema and has no locking (one event loop or thread).
    """

    def __init__(self, *, exact: bool = False, mode: str = "confluent"):
        self.exact = exact
        self.mode = mode
        self.compiles = 0
        self._by_fp: dict[str, KeyFunction | DecodeError] = {}

    def __len__(self) -> int:
        return len(self._by_fp)

    def for_schema(self, schema: ParsedSchema) -> KeyFunction:
        """Return the key function of ``schema``, compiling it on first use.

        Parameters
        ----------
        schema : ParsedSchema
            The writer schema of the bodies to key.

        Returns
        -------
        KeyFunction
            ``key(body, start=0) -> bytes`` (see :func:`object_key_reader`).

        Raises
        ------
        DecodeError
            If the schema is neither a ZTF nor an LSST alert schema (every time it is asked).
        """
        found = self._by_fp.get(schema.fingerprint)
        if found is None:
            self.compiles += 1
            try:
                found = object_key_reader(schema, exact=self.exact, mode=self.mode)
            except DecodeError as exc:
                found = exc
            self._by_fp[schema.fingerprint] = found
        if isinstance(found, DecodeError):
            raise DecodeError(found.mode, found.reason, found.schema_id)
        return found

    def key(
        self, schema: ParsedSchema, body: bytes | bytearray | memoryview, start: int = 0
    ) -> bytes:
        """Return the message key of one body.

        Parameters
        ----------
        schema : ParsedSchema
            Writer schema of ``body``.
        body : bytes or bytearray or memoryview
            Bare Avro body (from ``start`` on).
        start : int, optional
            Offset of the body, e.g. 5 for a whole Confluent-framed message.

        Returns
        -------
        bytes
            The key.

        Raises
        ------
        DecodeError
            For an unkeyable schema or a body that cannot be walked.
        """
        return self.for_schema(schema)(body, start)
