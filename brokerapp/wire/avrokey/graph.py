"""The schema graph: an Avro schema with its named types resolved, for the field reader.

An Avro schema is JSON: a primitive type name (``"long"``), a union (a list of schemas), or an
object with a ``type``: ``record`` / ``error`` (``name``, ``namespace``, ``fields``), ``enum``
(``symbols``), ``fixed`` (``size``), ``array`` (``items``) or ``map`` (``values``). A named
type may be referred to by its full name after its definition (a record ``"ns.Source"`` as
the items of a later array field); a relative name is looked up in the enclosing namespace
first.
fastavro's parsed form is the same JSON with references kept, plus a ``__named_schemas``
table of every named type, used here when a reference is met before its definition.

:func:`schema_graph` turns either form into :class:`AvroType` nodes in which references are
edges to the one node of that name (so a recursive record is a cycle), and
:func:`has_path`, :func:`field_type` and :func:`field_position` answer where a field path
leads. A schema the reader cannot use raises :class:`KeyPathError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brokerapp.wire.codecs.schemas import ParsedSchema

__all__ = [
    "PRIMITIVES",
    "AvroType",
    "KeyPathError",
    "explain_path",
    "field_position",
    "field_type",
    "has_path",
    "schema_graph",
]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
"""Avro's primitive type names."""
_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})


class KeyPathError(ValueError):
    """A requested field path cannot be read with the given schema (raised at compile time)."""


@dataclass(eq=False, repr=False, slots=True)
class AvroType:
    """One Avro type with names resolved; records may refer to themselves (a graph).

    Attributes
    ----------
    kind : str
        A primitive type name, ``"record"`` (also for Avro's ``error``), ``"enum"``,
        ``"fixed"``, ``"array"``, ``"map"`` or ``"union"``.
    name : str
        Full name of a named type; empty otherwise.
    size : int
        Byte size of a ``fixed``.
    symbols : tuple of str
        Symbols of an ``enum``.
    items : AvroType or None
        Item type of an ``array``, value type of a ``map``.
    branches : tuple of AvroType
        Branches of a ``union``, in index order.
    fields : list of (str, AvroType)
        Fields of a ``record``, in schema (and encoding) order.
    """

    kind: str
    name: str = ""
    size: int = 0
    symbols: tuple[str, ...] = ()
    items: AvroType | None = None
    branches: tuple[AvroType, ...] = ()
    fields: list[tuple[str, AvroType]] = field(default_factory=list)


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


class _Resolver:
    """Build the :class:`AvroType` graph of a schema (raw JSON or fastavro's parsed form)."""

    def __init__(self, library: Mapping[str, Any]):
        self.named: dict[str, AvroType] = {}
        self.library = library  # fastavro's "__named_schemas", a fallback for references

    def resolve(self, schema: Any, namespace: str = "") -> AvroType:
        if isinstance(schema, str):
            return self._reference(schema, namespace)
        if isinstance(schema, list):
            return AvroType("union", branches=tuple(self.resolve(b, namespace) for b in schema))
        if not isinstance(schema, Mapping):
            raise KeyPathError(f"not an Avro schema: {schema!r:.80}")
        kind = schema.get("type")
        if isinstance(kind, list | Mapping):
            return self.resolve(kind, namespace)
        if not isinstance(kind, str):
            raise KeyPathError(f"Avro schema without a type: {dict(schema)!r:.80}")
        if kind in PRIMITIVES:
            return AvroType(kind)  # logicalType and other attributes do not change the encoding
        if kind == "array":
            return AvroType("array", items=self.resolve(schema["items"], namespace))
        if kind == "map":
            return AvroType("map", items=self.resolve(schema["values"], namespace))
        if kind in _NAMED_KINDS:
            return self._define(schema, kind, namespace)
        return self._reference(kind, namespace)  # {"type": "some.named.Type"}

    def _define(self, schema: Mapping[str, Any], kind: str, namespace: str) -> AvroType:
        own = schema.get("namespace")
        full = _full_name(schema["name"], namespace if own is None else own)
        node = AvroType("record" if kind == "error" else kind, name=full)
        self.named[full] = node  # before the fields: a record may refer to itself
        if kind == "fixed":
            node.size = int(schema["size"])
        elif kind == "enum":
            node.symbols = tuple(schema["symbols"])
        else:
            inner = full.rpartition(".")[0]
            node.fields = [(f["name"], self.resolve(f["type"], inner)) for f in schema["fields"]]
        return node

    def _reference(self, name: str, namespace: str) -> AvroType:
        if name in PRIMITIVES:
            return AvroType(name)
        candidates = [name] if "." in name or not namespace else [f"{namespace}.{name}", name]
        for candidate in candidates:
            if candidate in self.named:
                return self.named[candidate]
        for candidate in candidates:
            if candidate in self.library:
                return self.resolve(self.library[candidate], namespace)
        raise KeyPathError(f"unknown Avro type name {name!r} (namespace {namespace!r})")


def _schema_json(schema: ParsedSchema | Mapping | list | str | bytes) -> Any:
    if isinstance(schema, ParsedSchema):
        return schema.parsed
    if isinstance(schema, str | bytes | bytearray):
        try:
            return json.loads(schema)
        except ValueError:
            return schema.decode() if isinstance(schema, bytes | bytearray) else schema
    return schema


def schema_graph(schema: ParsedSchema | Mapping | list | str | bytes) -> AvroType:
    """Resolve a schema into its graph.

    Parameters
    ----------
    schema : ParsedSchema or dict or list or str or bytes
        A :class:`~brokerapp.wire.codecs.schemas.ParsedSchema` (its fastavro-parsed form is
        used), fastavro's ``parse_schema`` output, or the raw schema JSON (loaded, or text).

    Returns
    -------
    AvroType
        The top-level type.

    Raises
    ------
    KeyPathError
        If the schema refers to an unknown type name or is no Avro schema.
    KeyError
        If a named type, array or map lacks a required attribute.
    """
    loaded = _schema_json(schema)
    library = loaded.get("__named_schemas", {}) if isinstance(loaded, Mapping) else {}
    return _Resolver(library).resolve(loaded)


def _record_branches(node: AvroType) -> list[AvroType]:
    if node.kind == "record":
        return [node]
    if node.kind == "union":
        return [branch for branch in node.branches if branch.kind == "record"]
    return []


def has_path(node: AvroType, path: Sequence[str]) -> bool:
    """Tell whether some record (or record branch of a union) on the way holds ``path``.

    Parameters
    ----------
    node : AvroType
        Where the path starts.
    path : sequence of str
        Field names, outermost first.

    Returns
    -------
    bool
        True when every name is a field of a record reached by the names before it.
    """
    if not path:
        return True
    for record in _record_branches(node):
        for name, child in record.fields:
            if name == path[0] and has_path(child, path[1:]):
                return True
    return False


def explain_path(node: AvroType, path: Sequence[str]) -> str:
    """Describe ``path`` for an error message.

    Parameters
    ----------
    node : AvroType
        Where the path starts.
    path : sequence of str
        Field names, outermost first.

    Returns
    -------
    str
        ``path`` joined by dots, and where it stops when a field on the way is no record.
    """
    for depth in range(len(path) - 1, 0, -1):
        found = field_type(node, path[:depth])
        if found is not None:
            if not _record_branches(found):
                head = ".".join(path[:depth])
                return f"{'.'.join(path)} ({head} is a {found.kind}, not a record)"
            break
    return ".".join(path)


def field_type(node: AvroType, path: Sequence[str]) -> AvroType | None:
    """Return the type of the field at ``path``, in the first record branch that has it.

    Parameters
    ----------
    node : AvroType
        Where the path starts.
    path : sequence of str
        Field names, outermost first (at least one).

    Returns
    -------
    AvroType or None
        The field's type; None when no record on the way has the path.
    """
    for record in _record_branches(node):
        for name, child in record.fields:
            if name == path[0]:
                if len(path) == 1:
                    return child
                found = field_type(child, path[1:])
                if found is not None:
                    return found
    return None


def field_position(node: AvroType, path: Sequence[str]) -> tuple[int, ...] | None:
    """Return where the field at ``path`` is encoded, as its field indexes along the path.

    Fields are encoded in schema order, so of two fields the one with the smaller position
    (compared as tuples) comes first in a body.

    Parameters
    ----------
    node : AvroType
        Where the path starts.
    path : sequence of str
        Field names, outermost first (at least one).

    Returns
    -------
    tuple of int or None
        The index of each field in its record, in the first record branch that has the
        path (as :func:`field_type`); None when no record on the way has it.
    """
    for record in _record_branches(node):
        for index, (name, child) in enumerate(record.fields):
            if name == path[0]:
                if len(path) == 1:
                    return (index,)
                found = field_position(child, path[1:])
                if found is not None:
                    return (index, *found)
    return None
