"""Parsed Avro schemas and the schema cache: decoding never parses a schema per message.

A :class:`ParsedSchema` is one Avro schema parsed once by fastavro, with its identity: the
fingerprint, SHA-256 of the Avro Parsing Canonical Form (the schema reduced to names, types,
sizes and symbols, with no docs, defaults or key order), so two texts of the same schema are
one schema. A :class:`SchemaCache` keeps each distinct schema parsed once, keyed by registry
ID, by fingerprint and by the exact JSON text it was given as, so the schema text of each
container header costs one dictionary lookup after the first message.

A schema text that is not JSON, or not a valid Avro schema, raises
:class:`~brokerapp.wire.codecs.errors.DecodeError` with the caller's ``mode``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from brokerapp.wire.codecs.errors import SCHEMA_ERRORS, DecodeError, describe

__all__ = ["FINGERPRINT_ALGORITHM", "ParsedSchema", "SchemaCache", "parse_schema"]

FINGERPRINT_ALGORITHM = "sha256"
"""Hash of the Parsing Canonical Form used as schema fingerprint (collision-safe cache key)."""


@dataclass(frozen=True, slots=True)
class ParsedSchema:
    """An Avro schema parsed once, with its identity.

    Two instances compare equal (and hash alike) when their fingerprints are equal, i.e. when
    they have the same Parsing Canonical Form, whatever their docs or field order of JSON keys.

    Attributes
    ----------
    raw : dict or list or str
        The schema JSON as given (a dict for record schemas).
    parsed : dict or list or str
        fastavro's parsed form, handed to its readers and writers (not re-parsed by them).
    fingerprint : str
        Hex SHA-256 of the Parsing Canonical Form.
    name : str
        Full name of the top-level named type (``"ztf.alert"``, ``"lsst.v9_0.alert"``), the
        primitive type name for a primitive schema, or ``"union"``.
    canonical : str
        The Parsing Canonical Form (names, types, sizes, symbols only; no docs or defaults).
    """

    raw: Any = field(compare=False, repr=False)
    parsed: Any = field(compare=False, repr=False)
    fingerprint: str
    name: str = field(compare=False)
    canonical: str = field(compare=False, repr=False)

    @property
    def text(self) -> str:
        """The schema as JSON text (from :attr:`raw`), e.g. to register it in a registry."""
        return json.dumps(self.raw)


def _schema_name(parsed: Any) -> str:
    if isinstance(parsed, list):
        return "union"
    if isinstance(parsed, str):
        return parsed
    name = parsed.get("name")
    return name if isinstance(name, str) else str(parsed.get("type"))


def load_schema_json(schema: str | bytes | Mapping | list, mode: str) -> Any:
    if isinstance(schema, str | bytes | bytearray):
        try:
            return json.loads(schema)
        except ValueError as exc:
            raise DecodeError(mode, f"schema is not valid JSON: {describe(exc)}") from exc
    return schema


def _canonical(raw: Any, mode: str) -> tuple[str, str]:
    try:
        canonical = to_parsing_canonical_form(raw)
    except SCHEMA_ERRORS as exc:
        raise DecodeError(mode, f"invalid Avro schema: {describe(exc)}") from exc
    return canonical, fingerprint(canonical, FINGERPRINT_ALGORITHM)


def _build(raw: Any, canonical: str, fp: str, mode: str) -> ParsedSchema:
    try:
        parsed = fastavro.parse_schema(raw)
    except SCHEMA_ERRORS as exc:
        raise DecodeError(mode, f"invalid Avro schema: {describe(exc)}") from exc
    return ParsedSchema(
        raw=raw, parsed=parsed, fingerprint=fp, name=_schema_name(parsed), canonical=canonical
    )


def parse_schema(schema: str | bytes | dict, mode: str = "schema") -> ParsedSchema:
    """Parse an Avro schema once (uncached; see :class:`SchemaCache` for the cached way).

    Parameters
    ----------
    schema : str or bytes or dict
        Schema JSON text or the already-loaded JSON value.
    mode : str, optional
        ``mode`` of the :class:`DecodeError` raised on failure (the caller's framing).

    Returns
    -------
    ParsedSchema
        The parsed schema with its fingerprint.

    Raises
    ------
    DecodeError
        If the text is not JSON or not a valid Avro schema.
    """
    raw = load_schema_json(schema, mode)
    canonical, fp = _canonical(raw, mode)
    return _build(raw, canonical, fp, mode)


class SchemaCache:
    """Parsed schemas by registry ID and by fingerprint; never parses the same schema twice.

    A third index maps the exact schema JSON text (str or bytes) seen before to its parsed
    schema, so handing the same text again (each ZTF container header carries it) costs one
    dictionary lookup, without canonicalising it again. Schemas given as dicts are
    canonicalised on each call (cheap next to a parse) but parsed only if their fingerprint is
    new. The cache is meant for one event loop / thread and has no locking.

    Attributes
    ----------
    parses : int
        Number of schemas actually parsed by this cache (distinct fingerprints).
    hits : int
        Number of look-ups and interns served from the cache.
    """

    def __init__(self) -> None:
        self._by_id: dict[int, ParsedSchema] = {}
        self._by_fp: dict[str, ParsedSchema] = {}
        self._by_text: dict[str | bytes, ParsedSchema] = {}
        self.parses = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._by_fp)

    def __contains__(self, schema_id: object) -> bool:
        return schema_id in self._by_id

    def by_id(self, schema_id: int) -> ParsedSchema | None:
        """Return the schema registered under ``schema_id``, or None when unknown.

        Parameters
        ----------
        schema_id : int
            Registry ID.

        Returns
        -------
        ParsedSchema or None
            The cached schema.
        """
        found = self._by_id.get(schema_id)
        if found is not None:
            self.hits += 1
        return found

    def by_fingerprint(self, fp: str) -> ParsedSchema | None:
        """Return the schema with fingerprint ``fp``, or None when unknown.

        Parameters
        ----------
        fp : str
            Hex SHA-256 of the Parsing Canonical Form (:attr:`ParsedSchema.fingerprint`).

        Returns
        -------
        ParsedSchema or None
            The cached schema.
        """
        found = self._by_fp.get(fp)
        if found is not None:
            self.hits += 1
        return found

    def intern(
        self, schema: str | bytes | dict | ParsedSchema, mode: str = "schema"
    ) -> ParsedSchema:
        """Return the one cached :class:`ParsedSchema` for ``schema``, parsing it if new.

        Parameters
        ----------
        schema : str or bytes or dict or ParsedSchema
            Schema JSON text, loaded JSON value, or an already parsed schema (adopted as the
            cached instance if its fingerprint is new).
        mode : str, optional
            ``mode`` of the :class:`DecodeError` raised for an invalid schema.

        Returns
        -------
        ParsedSchema
            The cached instance; identical for every schema with the same canonical form.

        Raises
        ------
        DecodeError
            If the schema is not JSON or not a valid Avro schema.
        """
        if isinstance(schema, ParsedSchema):
            known = self._by_fp.get(schema.fingerprint)
            if known is not None:
                self.hits += 1
                return known
            self._by_fp[schema.fingerprint] = schema
            return schema
        text: str | bytes | None
        if isinstance(schema, str | bytes):
            text = schema
        elif isinstance(schema, bytearray):
            text = bytes(schema)
        else:
            text = None
        if text is not None:
            known = self._by_text.get(text)
            if known is not None:
                self.hits += 1
                return known
        raw = load_schema_json(schema if text is None else text, mode)
        canonical, fp = _canonical(raw, mode)
        known = self._by_fp.get(fp)
        if known is not None:
            self.hits += 1
        else:
            known = _build(raw, canonical, fp, mode)
            self.parses += 1
            self._by_fp[fp] = known
        if text is not None:
            self._by_text[text] = known
        return known

    def put_id(
        self, schema_id: int, schema: str | bytes | dict | ParsedSchema, mode: str = "schema"
    ) -> ParsedSchema:
        """Register ``schema`` under ``schema_id``; reuse the instance of an equal schema.

        Parameters
        ----------
        schema_id : int
            Registry ID.
        schema : str or bytes or dict or ParsedSchema
            The schema for that ID.
        mode : str, optional
            ``mode`` of the :class:`DecodeError` raised for an invalid schema.

        Returns
        -------
        ParsedSchema
            The cached instance now registered under ``schema_id``.

        Raises
        ------
        DecodeError
            If the schema is not JSON or not a valid Avro schema.
        """
        parsed = self.intern(schema, mode=mode)
        self._by_id[schema_id] = parsed
        return parsed
