"""Decode only the fields a branch reads: field readers, and the branch's decode entry point.

A field path names fields from the top-level record down, e.g. ``("candidate", "ra")``. It
may cross records, unions holding records (the branch the body took is followed) and arrays
of records (the rest of the path then applies to every item: ``("prv_candidates", "candid")``
is the ``candid`` of each previous candidate). A :class:`FieldReader`, compiled once per
writer schema and set of paths, reads one Avro body and returns the *partial record*: nested
dicts holding just those fields, with lists of dicts for the arrays crossed, shaped as the
whole decode would be. Two strategies, chosen when it is built:

``"keyreader"``
    The project's field reader (:class:`~brokerapp.wire.avrokey.KeyReader`): one pass over
    the body that walks over the fields before the requested ones and stops after the last
    of them. Only for paths that cross no array and end on a primitive (or a union of
    primitives). A field inside a union branch that the body did not take reads as None
    (its enclosing dicts are still there).
``"projection"``
    fastavro's ``schemaless_reader`` with a *reader schema* holding only the requested fields
    (Avro schema resolution): works for every path, walks the whole body, checks all of it.

``"auto"`` (the default) takes ``"keyreader"`` when it can read the paths and
``"projection"`` otherwise: ``bench/bench_fields.py`` measured the key reader faster for
every field set it can read, on ZTF and Rubin 9.0 alerts. The key reader checks only the
bytes it walks: a body corrupt *after* the last requested field reads without error, and the
error comes when (if) the whole record is decoded.

:class:`FieldDecoder` is what a branch calls. For a Confluent-framed message and a set of
read names (:data:`~brokerapp.model.profiles.READS`, e.g. a chain's
:attr:`~brokerapp.domain.processors.Chain.reads`), :meth:`FieldDecoder.decode` looks the
schema up through the :class:`~brokerapp.wire.codecs.ConfluentCodec` (fetched once per ID),
picks the survey profile from the schema's top-level fields, turns the reads into field paths
(:meth:`~brokerapp.model.profiles.SurveyProfile.field_paths`, keeping those the schema has),
compiles a :class:`FieldReader` once per (schema, reads) and returns a projected
:class:`~brokerapp.model.alert.Alert` whose whole record is decoded by the codec the first
time a processor asks for it. With ``reads`` None (something in the chain did not say what it
reads) it decodes the whole record, as ``ConfluentCodec.decode`` and ``Alert.of`` do::

    decoder = FieldDecoder(codec)
    schema_id, alert = await decoder.decode(message_value, chain.reads)

Every failure to read a body is a :class:`~brokerapp.wire.codecs.DecodeError` (mode, schema
ID, reason); a schema of no known survey raises
:class:`~brokerapp.model.profiles.UnknownSurveyError`, as ``Alert.of`` does.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from brokerapp.model.alert import Alert
from brokerapp.model.profiles import FieldPath, SurveyProfile, profile_for_fields
from brokerapp.wire.avrokey.graph import PRIMITIVES, AvroType, KeyPathError, schema_graph
from brokerapp.wire.avrokey.reader import KeyReader
from brokerapp.wire.codecs.body import read_body
from brokerapp.wire.codecs.confluent import ConfluentCodec
from brokerapp.wire.codecs.errors import DecodeError
from brokerapp.wire.codecs.framing import CONFLUENT_HEADER_SIZE, unframe
from brokerapp.wire.codecs.schemas import ParsedSchema, parse_schema

__all__ = [
    "STRATEGIES",
    "FieldDecoder",
    "FieldReader",
    "present_paths",
    "projection_schema",
]

STRATEGIES = ("auto", "keyreader", "projection")
"""What :class:`FieldReader` accepts as ``strategy``."""


# ------------------------------------------------------------------------------- paths


def _record_branches(node: AvroType) -> list[AvroType]:
    """Return the records a path may enter at ``node`` (itself, union records, array items)."""
    if node.kind == "record":
        return [node]
    if node.kind == "union":
        return [found for branch in node.branches for found in _record_branches(branch)]
    if node.kind == "array" and node.items is not None:
        return _record_branches(node.items)
    return []


def _holds(node: AvroType, path: Sequence[str]) -> bool:
    if not path:
        return True
    return any(
        name == path[0] and _holds(child, path[1:])
        for record in _record_branches(node)
        for name, child in record.fields
    )


def present_paths(schema: ParsedSchema, paths: Iterable[Sequence[str]]) -> tuple[FieldPath, ...]:
    """Keep the paths ``schema`` has (e.g. a profile's names of every schema version).

    Parameters
    ----------
    schema : ParsedSchema
        Writer schema.
    paths : iterable of sequence of str
        Field paths.

    Returns
    -------
    tuple of FieldPath
        Those that lead, through records, unions and arrays, to a field of the schema.
    """
    root = schema_graph(schema)
    return tuple(tuple(path) for path in paths if path and _holds(root, path))


def _crosses_array(node: AvroType, path: Sequence[str]) -> bool:
    if node.kind == "array" or (
        node.kind == "union" and any(b.kind == "array" for b in node.branches)
    ):
        return True
    if not path:
        return False
    return any(
        name == path[0] and _holds(child, path[1:]) and _crosses_array(child, path[1:])
        for record in _record_branches(node)
        for name, child in record.fields
    )


# ------------------------------------------------------------------- projection schema

_FULL = "full"
"""Marker: the whole value of a record node is wanted (a path ends on it)."""


def _want(node: AvroType, path: Sequence[str], wanted: dict[int, Any]) -> None:
    """Record in ``wanted`` (node id -> set of field names, or FULL) what ``path`` needs."""
    for record in _record_branches(node):
        for name, child in record.fields:
            if name != path[0] or not _holds(child, path[1:]):
                continue
            names = wanted.setdefault(id(record), set())
            if names is not _FULL:
                names.add(name)
            if len(path) == 1:
                _want_all(child, wanted)
            else:
                _want(child, path[1:], wanted)


def _want_all(node: AvroType, wanted: dict[int, Any]) -> None:
    if node.kind == "record":
        if wanted.get(id(node)) is _FULL:
            return
        wanted[id(node)] = _FULL
        for _name, child in node.fields:
            _want_all(child, wanted)
    elif node.kind == "union":
        for branch in node.branches:
            _want_all(branch, wanted)
    elif node.kind in ("array", "map") and node.items is not None:
        _want_all(node.items, wanted)


def _to_json(node: AvroType, wanted: dict[int, Any], defined: set[int]) -> Any:
    """Return the reader schema of ``node``: records cut to the wanted fields, names once."""
    kind = node.kind
    if kind in PRIMITIVES:
        return kind
    if kind == "union":
        return [_to_json(branch, wanted, defined) for branch in node.branches]
    if kind == "array":
        return {"type": "array", "items": _to_json(_items(node), wanted, defined)}
    if kind == "map":
        return {"type": "map", "values": _to_json(_items(node), wanted, defined)}
    if id(node) in defined:
        return node.name
    defined.add(id(node))
    if kind == "enum":
        return {"type": "enum", "name": node.name, "symbols": list(node.symbols)}
    if kind == "fixed":
        return {"type": "fixed", "name": node.name, "size": node.size}
    names = wanted.get(id(node), set())
    return {
        "type": "record",
        "name": node.name,
        "fields": [
            {"name": name, "type": _to_json(child, wanted, defined)}
            for name, child in node.fields
            if names is _FULL or name in names
        ],
    }


def _items(node: AvroType) -> AvroType:
    if node.items is None:  # never: the resolver gives every array and map its items
        raise KeyPathError(f"{node.kind} without an item type")
    return node.items


def projection_schema(schema: ParsedSchema, paths: Iterable[Sequence[str]]) -> Any:
    """Return the reader schema JSON that keeps only ``paths`` of ``schema``.

    Every named type keeps its full name, so Avro schema resolution matches it with the
    writer's; a record met along several paths keeps the fields of all of them.

    Parameters
    ----------
    schema : ParsedSchema
        Writer schema.
    paths : iterable of sequence of str
        Field paths the schema has (:func:`present_paths`).

    Returns
    -------
    dict
        The reader schema.

    Raises
    ------
    KeyPathError
        If a path is not in the schema.
    """
    root = schema_graph(schema)
    wanted: dict[int, Any] = {}
    for path in paths:
        if not path or not _holds(root, path):
            raise KeyPathError(f"schema {root.name} has no field {'.'.join(path)}")
        _want(root, path, wanted)
    return _to_json(root, wanted, set())


# ------------------------------------------------------------------------- the reader

Builder = Callable[[list], dict]


def _builder(paths: Sequence[FieldPath]) -> Builder:
    """Turn the key reader's flat list of values into the nested partial record."""
    trie: dict[str, Any] = {}
    for slot, path in enumerate(paths):
        node = trie
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = slot
    return _compile_trie(trie)


def _compile_trie(trie: dict[str, Any]) -> Builder:
    leaves = tuple((name, slot) for name, slot in trie.items() if isinstance(slot, int))
    nested = tuple(
        (name, _compile_trie(sub)) for name, sub in trie.items() if isinstance(sub, dict)
    )

    def build(values: list) -> dict:
        record = {name: values[slot] for name, slot in leaves}
        for name, sub in nested:
            record[name] = sub(values)
        return record

    return build


class FieldReader:
    """Read the fields of ``paths`` from bare Avro bodies of one writer schema.

    Parameters
    ----------
    schema : ParsedSchema
        Writer schema.
    paths : sequence of sequence of str
        Field paths, every one in the schema (:func:`present_paths` keeps those).
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.DecodeError` raised.
    strategy : str, optional
        ``"auto"`` (default), ``"keyreader"`` or ``"projection"`` (module docstring).

    Attributes
    ----------
    paths : tuple of FieldPath
        As given.
    strategy : str
        The strategy in use (``"keyreader"`` or ``"projection"``).
    mode : str
        As given.
    reader_schema : ParsedSchema or None
        The projecting reader schema (``"projection"`` only).

    Raises
    ------
    KeyPathError
        If a path is not in the schema, or ``"keyreader"`` was asked for paths it cannot read.
    ValueError
        If ``strategy`` is not one of :data:`STRATEGIES`.
    """

    def __init__(
        self,
        schema: ParsedSchema,
        paths: Sequence[Sequence[str]],
        mode: str = "confluent",
        strategy: str = "auto",
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        self.paths: tuple[FieldPath, ...] = tuple(tuple(path) for path in paths)
        self.mode = mode
        self.schema = schema
        self.reader_schema: ParsedSchema | None = None
        self._key_reader: KeyReader | None = None
        root = schema_graph(schema)
        for path in self.paths:
            if not path or not _holds(root, path):
                raise KeyPathError(f"schema {schema.name} has no field {'.'.join(path)}")
        readable = not any(_crosses_array(root, path) for path in self.paths)
        if strategy == "keyreader" or (strategy == "auto" and readable and self.paths):
            try:
                self._key_reader = KeyReader(schema, self.paths, mode)
            except KeyPathError:
                if strategy == "keyreader":
                    raise
        if self._key_reader is not None:
            self.strategy = "keyreader"
            self._build = _builder(self.paths)
        else:
            self.strategy = "projection"
            self.reader_schema = parse_schema(projection_schema(schema, self.paths), mode)

    def read(self, body: bytes, start: int = 0, schema_id: int | None = None) -> dict[str, Any]:
        """Read one body's partial record.

        Parameters
        ----------
        body : bytes
            The bytes holding one bare Avro body from ``start`` to its end (e.g. a whole
            Confluent-framed message and ``start`` 5).
        start : int, optional
            Where the body starts.
        schema_id : int, optional
            Named in the :class:`~brokerapp.wire.codecs.DecodeError` raised.

        Returns
        -------
        dict
            Nested dicts holding the requested fields.

        Raises
        ------
        DecodeError
            If the bytes read are truncated or corrupt (``"projection"``: anywhere in the
            body, or trailing bytes after it; ``"keyreader"``: up to the last field read).
        """
        key_reader = self._key_reader
        if key_reader is not None:
            try:
                return self._build(key_reader.read(body, start))
            except DecodeError as exc:
                raise DecodeError(self.mode, exc.reason, schema_id) from exc
        buffer = io.BytesIO(body)
        buffer.seek(start)
        record: dict[str, Any] = read_body(
            buffer, len(body), self.schema, self.mode, schema_id, self.reader_schema
        )
        return record

    def __repr__(self) -> str:
        return f"FieldReader({self.schema.name}, {self.strategy}, {len(self.paths)} paths)"


# ----------------------------------------------------------------------- the decoder


class FieldDecoder:
    """Decode Confluent-framed alerts into projected :class:`~brokerapp.model.alert.Alert` s.

    Parameters
    ----------
    codec : ConfluentCodec
        Finds schemas by ID (fetching and caching them) and decodes whole records.
    strategy : str, optional
        The :class:`FieldReader` strategy (default ``"auto"``).

    Attributes
    ----------
    codec : ConfluentCodec
        As given.
    strategy : str
        As given.
    """

    def __init__(self, codec: ConfluentCodec, strategy: str = "auto") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
        self.codec = codec
        self.strategy = strategy
        self._plans: dict[tuple[str, frozenset[str]], tuple[SurveyProfile, FieldReader]] = {}
        self._profiles: dict[str, SurveyProfile] = {}

    def profile_of(self, schema: ParsedSchema) -> SurveyProfile:
        """Return the survey profile of a writer schema (from its top-level field names).

        Raises
        ------
        brokerapp.model.profiles.UnknownSurveyError
            If the schema is no known survey's alert schema.
        """
        profile = self._profiles.get(schema.fingerprint)
        if profile is None:
            root = schema_graph(schema)
            names = [name for record in _record_branches(root) for name, _ in record.fields]
            profile = self._profiles[schema.fingerprint] = profile_for_fields(names)
        return profile

    def plan(
        self, schema: ParsedSchema, reads: frozenset[str]
    ) -> tuple[SurveyProfile, FieldReader]:
        """Return the profile and the compiled reader of (schema, reads), compiling once.

        Raises
        ------
        brokerapp.model.profiles.UnknownSurveyError
            If the schema is no known survey's alert schema.
        brokerapp.model.profiles.UnknownReadError
            If a read name is unknown.
        """
        key = (schema.fingerprint, reads)
        known = self._plans.get(key)
        if known is None:
            profile = self.profile_of(schema)
            paths = present_paths(schema, profile.field_paths(reads))
            reader = FieldReader(schema, paths, self.codec.mode, self.strategy)
            known = self._plans[key] = (profile, reader)
        return known

    def decode_known(
        self, data: bytes, schema: ParsedSchema, schema_id: int, reads: Iterable[str] | None
    ) -> Alert:
        """Read one message whose schema is at hand (synchronous).

        Parameters
        ----------
        data : bytes
            The whole Confluent-framed message.
        schema : ParsedSchema
            Its writer schema.
        schema_id : int
            The ID in its header.
        reads : iterable of str or None
            Read names; None decodes the whole record.

        Returns
        -------
        Alert
            Projected, or from the whole record when ``reads`` is None.

        Raises
        ------
        DecodeError
            If the bytes read are corrupt.
        brokerapp.model.profiles.UnknownSurveyError
            If the schema (or record) is no known survey's.
        """

        def load() -> Mapping[str, Any]:
            buffer = io.BytesIO(data)
            buffer.seek(CONFLUENT_HEADER_SIZE)
            record: Mapping[str, Any] = read_body(
                buffer, len(data), schema, self.codec.mode, schema_id
            )
            return record

        if reads is None:
            return Alert.of(load(), schema_id)
        held = frozenset(reads)
        profile, reader = self.plan(schema, held)
        fields = reader.read(data, CONFLUENT_HEADER_SIZE, schema_id)
        return Alert.projected(fields, profile, held, load, schema_id)

    async def decode(self, data: bytes, reads: Iterable[str] | None) -> tuple[int, Alert]:
        """Decode a message for a branch that reads ``reads``: the branch's entry point.

        Parameters
        ----------
        data : bytes
            The Kafka message value (Confluent-framed).
        reads : iterable of str or None
            What the branch reads (:data:`~brokerapp.model.profiles.READS`); None: everything.

        Returns
        -------
        schema_id : int
            Registry ID from the header.
        alert : Alert
            Projected on ``reads`` (its whole record decoded when first asked for).

        Raises
        ------
        DecodeError
            Bad header, unknown schema ID, invalid registry schema, or corrupt bytes read.
        RegistryUnavailable
            When the registry cannot be reached.
        brokerapp.model.profiles.UnknownSurveyError
            If the schema is no known survey's alert schema.
        """
        schema_id, _body = unframe(data)
        schema = await self.codec.schema_for(schema_id)
        return schema_id, self.decode_known(data, schema, schema_id, reads)
