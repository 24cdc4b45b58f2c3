r"""Read a few fields of a bare Avro body without decoding it: the Kafka key of an alert.

The gateway mirrors thousands of alerts per second and keys each message by its object ID, so
that all alerts of one object land on one partition. A full decode of a ZTF alert (cutouts,
up to a few dozen previous detections) costs about a millisecond; the object ID sits among the
first bytes of the body. This module reads just those bytes.

The Avro binary encoding
    A record is its fields' encodings concatenated in schema order, with no field names, tags
    or lengths, so a field can only be reached by walking past the ones before it, and
    walking past a field needs its writer schema:

    * ``null``: nothing; ``boolean``: one byte; ``float``: 4 bytes; ``double``: 8 bytes
      (little-endian IEEE 754); ``fixed``: its declared size;
    * ``int``, ``long``: a zigzag varint (7 bits a byte, high bit = "more bytes follow",
      then ``n -> (n >> 1) ^ -(n & 1)``); ``enum``: the symbol index as such a varint;
    * ``bytes``, ``string``: a varint length then that many bytes (UTF-8 for strings);
    * ``array``, ``map``: blocks, each a varint item count then the items (a map item is a
      string key then the value), ended by a block of count 0. A *negative* count ``-n``
      means ``n`` items preceded by the block's size in bytes, which lets a reader jump over
      the block in one step (fastavro never writes such blocks, other writers may);
    * ``union``: the branch index as a varint, then the value of that branch;
    * ``record``: its fields, recursively. Named types (records, enums, fixed) may be
      referred to by full name after their definition (``"lsst.v9_0.diaSource"`` as the
      items of ``prvDiaSources``), with the usual namespace rules.

How it works
    :class:`KeyReader` compiles, once per schema, a flat tuple of small closures for the
    requested field paths: one per run of fields to skip, one per field to read, nested
    records inlined, and one per union on the way that picks the branch at run time. Reading
    a body runs that tuple once, in a single pass, and stops right after the last requested
    field: nothing after it (cutouts, previous detections) is touched. Nothing recurses over
    the schema at run time.

    Skipping uses the cheapest form each run of fields allows: a run of constant size is one
    jump; a run of *regular* fields (numbers, booleans, enums, fixed, and records and unions
    of those: no length or count prefixes) is one match of a regular expression compiled from
    the schema, which ``re`` runs in C (a union ``["null", "long"]`` becomes
    ``(?:\x00|\x02[\x80-\xff]*[\x00-\x7f])``); strings, bytes, arrays and maps are
    walked by closures (a negative-count block in one jump by its byte size). When a regular
    expression does not match, the closures walk the same bytes again to say what is wrong.

    Only the bytes walked over are checked: a body that is corrupt *after* the key fields
    reads without error here (a full decode downstream will reject it). Within the walked
    bytes, reading past the end, negative lengths or block sizes, out-of-range union indexes
    and invalid UTF-8 raise :class:`~brokerapp.wire.codecs.DecodeError`.

Object keys (:func:`object_key_reader`, :class:`KeyReaders`)
    The survey is told from the top-level fields, as :func:`brokerapp.model.profiles.profile_for`
    tells it from a decoded record (the sample LSST alerts name their record
    ``topLevelRecord``, so the schema name cannot be used). The key is the UTF-8 of the decimal
    (or string) ID, and equals ``str(profile.object_id(record))`` whenever the profile finds
    an object:

    ZTF (``ztf.alert`` 3.x/4.x)
        ``objectId``, the third field. When it is ZTF's ``"null"`` (never seen in practice):
        the alert ID, top-level ``candid`` else ``candidate.candid``.
    LSST (``lsst.v<M>_<m>.alert`` 3.0 to 11.1)
        ``diaSource.diaObjectId`` (the fourth field of ``diaSource``, itself the fourth
        top-level field from 8.0 and the second before; the third field of it before 7.0).
        When it is null or 0 (Rubin's "no object", e.g. a detection attributed to a
        solar-system object only), a second pass tries in this order:
        ``diaObject.diaObjectId`` (the lsst-alert-packet sample alerts leave
        ``diaSource.diaObjectId`` null but carry a ``diaObject``), ``diaSource.ssObjectId``,
        the alert ID ``diaSource.diaSourceId``, the top-level ``diaSourceId`` (8.0 on) or
        ``alertId`` (before 8.0). Object IDs that are null, 0 or ``-999`` count as absent, as
        in the profiles; alert IDs only when null. That second pass walks over the previous
        detections to reach ``diaObject``, so it costs more (see ``bench/bench_avrokey.py``).

        :class:`~brokerapp.model.profiles.LsstProfile` looks at ``diaObject.diaObjectId`` *before*
        ``diaSource.diaObjectId``; both are the same object in Rubin alerts (the diaSource's
        object is the diaObject sent with it), and ``diaObject`` comes after the previous
        detections, so by default the key is taken from ``diaSource`` first. With
        ``exact=True`` the profile's order is followed literally, at the cost of walking over
        ``prvDiaSources`` and ``prvDiaForcedSources`` in every alert; the two differ only for
        alerts whose two IDs are both set and disagree.

Errors
    A body that cannot be walked raises :class:`~brokerapp.wire.codecs.DecodeError` (``mode`` as
    given, ``schema_id`` None: the caller knows it). A schema that lacks a requested field, or
    whose field on the path is not a record, or whose target is not a primitive (or a union
    of primitives), raises :class:`KeyPathError` (a ``ValueError``) when the
    :class:`KeyReader` is built. A schema that is neither a ZTF nor an LSST alert raises
    :class:`~brokerapp.wire.codecs.DecodeError` from :func:`object_key_reader` (the schema came
    with a message, which should be dead-lettered); :class:`KeyReaders` remembers that too.
    An alert with neither an object ID nor an alert ID raises
    :class:`~brokerapp.wire.codecs.DecodeError` when keyed.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brokerapp.model.profiles import MISSING_NUMBER, NO_LSST_ID, is_missing
from brokerapp.wire.codecs import DecodeError, ParsedSchema

__all__ = [
    "KeyFunction",
    "KeyPathError",
    "KeyReader",
    "KeyReaders",
    "object_key_reader",
]

Op = Callable[[Any, int, list], int]
"""A compiled step: ``op(buf, pos, out) -> new pos``; reading steps store into ``out``."""
KeyFunction = Callable[..., bytes]
"""``key(body, start=0) -> bytes``: the message key of one bare Avro body."""

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
CONSTANT_SIZES = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})
READABLE = frozenset(PRIMITIVES | {"enum", "fixed"})
_MAX_VARINT_SHIFT = 63
"""Shift of the 10th byte of a varint; a 64-bit long never needs an 11th."""
_UINT64 = 2**64 - 1
_ONE_BYTE = 0x80
_MAX_PATTERN = 100_000
"""Longest regular expression built for a run of regular fields (bytes of pattern)."""
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")
_ABSENT = object()


class KeyPathError(ValueError):
    """A requested field path cannot be read with the given schema (raised at compile time)."""


class MalformedError(Exception):
    """The walked bytes break the encoding (negative length, bad union index ...)."""


# ------------------------------------------------------------------------- schema graph


@dataclass(eq=False, repr=False, slots=True)
class AvroType:
    """One Avro type with names resolved; records may refer to themselves (a graph)."""

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
    """Whether some record (or record branch of a union) on the way holds ``path``."""
    if not path:
        return True
    for record in _record_branches(node):
        for name, child in record.fields:
            if name == path[0] and has_path(child, path[1:]):
                return True
    return False


def explain_path(node: AvroType, path: Sequence[str]) -> str:
    """``path`` joined by dots, and where it stops when a field on the way is no record."""
    for depth in range(len(path) - 1, 0, -1):
        found = field_type(node, path[:depth])
        if found is not None:
            if not _record_branches(found):
                head = ".".join(path[:depth])
                return f"{'.'.join(path)} ({head} is a {found.kind}, not a record)"
            break
    return ".".join(path)


def field_type(node: AvroType, path: Sequence[str]) -> AvroType | None:
    """Type of the field at ``path`` in the first record branch that has it."""
    for record in _record_branches(node):
        for name, child in record.fields:
            if name == path[0]:
                if len(path) == 1:
                    return child
                found = field_type(child, path[1:])
                if found is not None:
                    return found
    return None


# ------------------------------------------------------------------------- runtime helpers


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    """Zigzag varint at ``pos``: its value and the position after it."""
    byte = buf[pos]
    pos += 1
    if byte < _ONE_BYTE:
        return (byte >> 1) ^ -(byte & 1), pos
    value = byte & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < _ONE_BYTE:
            if shift == _MAX_VARINT_SHIFT:  # a 10th byte: keep 64 bits, as fastavro does
                value &= _UINT64
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
        if shift > _MAX_VARINT_SHIFT:
            raise MalformedError("varint longer than 10 bytes")


def _length(buf: Any, pos: int) -> tuple[int, int]:
    """Non-negative length prefix (bytes, string) at ``pos``."""
    size, pos = _varint(buf, pos)
    if size < 0:
        raise MalformedError(f"negative length {size}")
    return size, pos


def _index(buf: Any, pos: int, count: int) -> tuple[int, int]:
    """Union branch or enum symbol index, checked against ``count``."""
    index, pos = _varint(buf, pos)
    if not 0 <= index < count:
        raise MalformedError(f"index {index} outside 0..{count - 1}")
    return index, pos


def _skip_nothing(buf: Any, pos: int, out: list) -> int:
    return pos


def _skip_varint(buf: Any, pos: int, out: list) -> int:
    while buf[pos] >= _ONE_BYTE:
        pos += 1
    return pos + 1


def _skip_sized(buf: Any, pos: int, out: list) -> int:
    byte = buf[pos]
    if byte < _ONE_BYTE and not byte & 1:
        return pos + 1 + (byte >> 1)
    size, pos = _length(buf, pos)
    return pos + size


def _advance(size: int) -> Op:
    if size == 0:
        return _skip_nothing

    def advance(buf: Any, pos: int, out: list) -> int:
        return pos + size

    return advance


def _chain(ops: Sequence[Op]) -> Op:
    """One step running ``ops`` in order."""
    if not ops:
        return _skip_nothing
    if len(ops) == 1:
        return ops[0]
    if len(ops) == 2:  # common case, without the loop
        first, second = ops

        def pair(buf: Any, pos: int, out: list) -> int:
            return second(buf, first(buf, pos, out), out)

        return pair
    steps = tuple(ops)

    def run(buf: Any, pos: int, out: list) -> int:
        for op in steps:
            pos = op(buf, pos, out)
        return pos

    return run


def _regex_op(pattern: bytes, closure: Op) -> Op:
    """Step matching ``pattern``; on no match, ``closure`` walks the bytes and says why."""
    match = re.compile(pattern, re.DOTALL).match

    def skip(buf: Any, pos: int, out: list) -> int:
        found = match(buf, pos)
        if found is None:
            return closure(buf, pos, out)
        return found.end()

    return skip


class Skip:
    """How to walk over one value of a type.

    ``closure`` always works and raises the precise error on bad bytes. ``size`` is the byte
    size when constant. ``pattern`` is a regular expression matching exactly the encoding when
    the type is regular (no lengths or counts: numbers, booleans, enums, fixed, records and
    unions of those); a run of such fields is then skipped by one ``re`` match in C, several
    times faster than one closure call per field. :meth:`fast` picks the quickest step.
    """

    __slots__ = ("_fast", "closure", "pattern", "size")

    def __init__(self, closure: Op, size: int | None = None, pattern: bytes | None = None):
        self.closure = closure
        self.size = size
        self.pattern = pattern
        self._fast: Op | None = None

    def fast(self) -> Op:
        """Return the quickest step: a jump, one regex match, or the closure."""
        if self._fast is None:
            if self.size is not None:
                self._fast = _advance(self.size)
            elif self.pattern is not None:
                self._fast = _regex_op(self.pattern, self.closure)
            else:
                self._fast = self.closure
        return self._fast


def constant_skip(size: int) -> Skip:
    pattern = b"" if size == 0 else b"." if size == 1 else b".{%d}" % size
    return Skip(_advance(size), size, pattern)


_NOTHING = constant_skip(0)
VARINT = Skip(_skip_varint, None, rb"[\x80-\xff]*[\x00-\x7f]")
SIZED = Skip(_skip_sized)


def _block_count(buf: Any, pos: int) -> tuple[int, int, int]:
    """Start of an array/map block: (item count, byte size or -1, position after)."""
    count, pos = _varint(buf, pos)
    if count >= 0:
        return count, -1, pos
    size, pos = _varint(buf, pos)
    if size < 0:
        raise MalformedError(f"negative block size {size}")
    return -count, size, pos


def skip_blocks(item: Skip) -> Skip:
    """Walk over the blocks of an array, or of a map (``item`` then is key and value)."""
    if item.size is not None:
        step = item.size

        def skip_constant(buf: Any, pos: int, out: list) -> int:
            while True:
                count, size, pos = _block_count(buf, pos)
                if count == 0:
                    return pos
                pos += size if size >= 0 else count * step

        return Skip(skip_constant)
    walk = item.fast()

    def skip(buf: Any, pos: int, out: list) -> int:
        while True:
            count, size, pos = _block_count(buf, pos)
            if count == 0:
                return pos
            if size >= 0:
                pos += size
                continue
            for _ in range(count):
                pos = walk(buf, pos, out)

    return Skip(skip)


def _one_byte_limit(count: int) -> int:
    """First byte value that is not a one-byte non-negative index below ``count``."""
    return min(2 * count, _ONE_BYTE)


def skip_union(branches: Sequence[Skip]) -> Skip:
    count = len(branches)
    limit = _one_byte_limit(count)
    pattern = None
    patterns = [branch.pattern for branch in branches if branch.pattern is not None]
    if count * 2 <= _ONE_BYTE and len(patterns) == count:
        alternatives = (re.escape(bytes([2 * i])) + each for i, each in enumerate(patterns))
        pattern = b"(?:" + b"|".join(alternatives) + b")"
        if len(pattern) > _MAX_PATTERN:
            pattern = None
    sizes = tuple(branch.size for branch in branches if branch.size is not None)
    if len(sizes) == count:
        constant = sizes

        def skip_sized(buf: Any, pos: int, out: list) -> int:
            byte = buf[pos]
            if byte < limit and not byte & 1:
                return pos + 1 + constant[byte >> 1]
            index, pos = _index(buf, pos, count)
            return pos + constant[index]

        return Skip(skip_sized, None, pattern)
    # A regular union's closure is only its error path: walk the branches by their closures.
    ops = tuple(b.closure if pattern is not None else b.fast() for b in branches)

    def skip(buf: Any, pos: int, out: list) -> int:
        byte = buf[pos]
        if byte < limit and not byte & 1:
            return ops[byte >> 1](buf, pos + 1, out)
        index, pos = _index(buf, pos, count)
        return ops[index](buf, pos, out)

    return Skip(skip, None, pattern)


def _merge_constants(skips: Iterable[Skip]) -> list[Skip]:
    merged: list[Skip] = []
    for skip in skips:
        if skip.size == 0:
            continue
        if skip.size is not None and merged and merged[-1].size is not None:
            merged[-1] = constant_skip(merged[-1].size + skip.size)
            continue
        merged.append(skip)
    return merged


def skip_sequence(skips: Iterable[Skip]) -> Skip:
    """Walk over values one after another (the fields of a record, a run of fields)."""
    merged = _merge_constants(skips)
    if not merged:
        return _NOTHING
    if len(merged) == 1:
        return merged[0]
    patterns = [skip.pattern for skip in merged if skip.pattern is not None]
    if len(patterns) == len(merged) and sum(map(len, patterns)) <= _MAX_PATTERN:
        closure = _chain([skip.closure for skip in merged])
        return Skip(closure, None, b"".join(patterns))
    ops: list[Op] = []
    run: list[Skip] = []
    run_size = 0
    for skip in merged:
        if skip.pattern is not None and run_size + len(skip.pattern) <= _MAX_PATTERN:
            run.append(skip)
            run_size += len(skip.pattern)
            continue
        if run:
            ops.append(skip_sequence(run).fast())
        run, run_size = ([skip], len(skip.pattern)) if skip.pattern is not None else ([], 0)
        if skip.pattern is None:
            ops.append(skip.fast())
    if run:
        ops.append(skip_sequence(run).fast())
    return Skip(_chain(ops))


# ----------------------------------------------------------------------------- value readers

Reader = Callable[[Any, int], tuple[Any, int]]


def _read_null(buf: Any, pos: int) -> tuple[None, int]:
    return None, pos


def _read_boolean(buf: Any, pos: int) -> tuple[bool, int]:
    byte = buf[pos]
    if byte > 1:
        raise MalformedError(f"boolean byte {byte}")
    return byte == 1, pos + 1


def _read_float(buf: Any, pos: int) -> tuple[float, int]:
    return _FLOAT.unpack_from(buf, pos)[0], pos + 4


def _read_double(buf: Any, pos: int) -> tuple[float, int]:
    return _DOUBLE.unpack_from(buf, pos)[0], pos + 8


def _slice(buf: Any, pos: int, size: int) -> tuple[Any, int]:
    end = pos + size
    if end > len(buf):
        raise IndexError("value runs past the end of the body")
    return buf[pos:end], end


def _read_bytes(buf: Any, pos: int) -> tuple[bytes, int]:
    size, pos = _length(buf, pos)
    data, pos = _slice(buf, pos, size)
    return bytes(data), pos


def _read_string(buf: Any, pos: int) -> tuple[str, int]:
    size, pos = _length(buf, pos)
    data, pos = _slice(buf, pos, size)
    return str(data, "utf-8"), pos


_PRIMITIVE_READERS: dict[str, Reader] = {
    "null": _read_null,
    "boolean": _read_boolean,
    "int": _varint,
    "long": _varint,
    "float": _read_float,
    "double": _read_double,
    "bytes": _read_bytes,
    "string": _read_string,
}


def _value_reader(node: AvroType, where: str) -> Reader:
    if node.kind in _PRIMITIVE_READERS:
        return _PRIMITIVE_READERS[node.kind]
    if node.kind == "enum":
        symbols = node.symbols
        count = len(symbols)

        def read_enum(buf: Any, pos: int) -> tuple[str, int]:
            index, pos = _index(buf, pos, count)
            return symbols[index], pos

        return read_enum
    if node.kind == "fixed":
        size = node.size

        def read_fixed(buf: Any, pos: int) -> tuple[bytes, int]:
            data, pos = _slice(buf, pos, size)
            return bytes(data), pos

        return read_fixed
    raise KeyPathError(f"{where}: cannot read a {node.kind} value (only primitives, enum, fixed)")


def leaf(node: AvroType, slot: int, where: str) -> Op:
    """Step reading the value of ``node`` into ``out[slot]``."""
    if node.kind in ("int", "long"):

        def read_long(buf: Any, pos: int, out: list) -> int:
            out[slot], pos = _varint(buf, pos)
            return pos

        return read_long
    if node.kind == "string":

        def read_string(buf: Any, pos: int, out: list) -> int:
            byte = buf[pos]
            if byte < _ONE_BYTE and not byte & 1:
                pos += 1
                end = pos + (byte >> 1)
            else:
                size, pos = _length(buf, pos)
                end = pos + size
            if end > len(buf):
                raise IndexError("string runs past the end of the body")
            out[slot] = str(buf[pos:end], "utf-8")
            return end

        return read_string
    if node.kind == "union":
        return _leaf_union(node, slot, where)
    reader = _value_reader(node, where)

    def read_value(buf: Any, pos: int, out: list) -> int:
        out[slot], pos = reader(buf, pos)
        return pos

    return read_value


def _leaf_union(node: AvroType, slot: int, where: str) -> Op:
    if any(branch.kind == "union" for branch in node.branches):
        raise KeyPathError(f"{where}: union directly inside a union")
    readers = tuple(_value_reader(branch, where) for branch in node.branches)
    count = len(readers)
    limit = _one_byte_limit(count)
    kinds = [branch.kind for branch in node.branches]
    if sorted(kinds) in (["long", "null"], ["int", "null"]):
        null_byte = 2 * kinds.index("null")  # the index's one-byte zigzag encoding

        def read_nullable_long(buf: Any, pos: int, out: list) -> int:
            byte = buf[pos]
            if byte == null_byte:
                return pos + 1
            if byte < limit and not byte & 1:
                out[slot], pos = _varint(buf, pos + 1)
                return pos
            index, pos = _index(buf, pos, count)  # raises, unless over-long but valid
            out[slot], pos = readers[index](buf, pos)
            return pos

        return read_nullable_long

    def read_union(buf: Any, pos: int, out: list) -> int:
        byte = buf[pos]
        if byte < limit and not byte & 1:
            out[slot], pos = readers[byte >> 1](buf, pos + 1)
            return pos
        index, pos = _index(buf, pos, count)
        out[slot], pos = readers[index](buf, pos)
        return pos

    return read_union


def descend_union(branch_steps: Sequence[Sequence[Op]]) -> Op:
    """Step reading the branch index of a union on the path, then that branch's steps."""
    steps = tuple(tuple(ops) for ops in branch_steps)
    count = len(steps)
    limit = _one_byte_limit(count)

    def descend(buf: Any, pos: int, out: list) -> int:
        byte = buf[pos]
        if byte < limit and not byte & 1:
            pos += 1
            ops = steps[byte >> 1]
        else:
            index, pos = _index(buf, pos, count)
            ops = steps[index]
        for op in ops:
            pos = op(buf, pos, out)
        return pos

    return descend


# ------------------------------------------------------------------------------ compiler

Trie = dict[str, Any]
"""Field name -> slot (int, a field to read) or a nested :data:`Trie` (a record to enter)."""


def build_trie(paths: Iterable[tuple[tuple[str, ...], int]]) -> Trie:
    root: Trie = {}
    for path, slot in paths:
        node = root
        for depth, name in enumerate(path):
            last = depth == len(path) - 1
            child = node.get(name, _ABSENT)
            if child is _ABSENT:
                child = node[name] = slot if last else {}
            elif last or not isinstance(child, dict):
                raise KeyPathError(f"path {'.'.join(path)} repeats or nests in another path")
            node = child
    return root


def _paths(trie: Trie, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], int]]:
    for name, child in trie.items():
        if isinstance(child, dict):
            yield from _paths(child, (*prefix, name))
        else:
            yield (*prefix, name), child


def finish(steps: Iterable[Skip | Op]) -> list[Op]:
    """Flat steps: each run of skips becomes one step (a jump, one regex match, or a chain)."""
    ops: list[Op] = []
    run: list[Skip] = []
    for step in (*steps, None):
        if isinstance(step, Skip):
            run.append(step)
            continue
        if run:
            skip = skip_sequence(run)
            if skip.size != 0:
                ops.append(skip.fast())
            run = []
        if step is not None:
            ops.append(step)
    return ops


class Compiler:
    """Turns a :class:`AvroType` graph and a :data:`Trie` into a flat tuple of steps."""

    def __init__(self) -> None:
        self._skippers: dict[AvroType, Skip] = {}

    def skipper(self, node: AvroType) -> Skip:
        """Compile walking over one value of ``node``."""
        known = self._skippers.get(node)
        if known is not None:
            return known
        kind = node.kind
        if kind in CONSTANT_SIZES:
            result = constant_skip(CONSTANT_SIZES[kind])
        elif kind in ("int", "long", "enum"):
            result = VARINT
        elif kind in ("bytes", "string"):
            result = SIZED
        elif kind == "fixed":
            result = constant_skip(node.size)
        elif kind in ("array", "map"):
            if node.items is None:  # never: the resolver gives every array and map its items
                raise KeyPathError(f"{kind} without an item type")
            walk = self.skipper(node.items)
            result = skip_blocks(walk if kind == "array" else skip_sequence([SIZED, walk]))
        elif kind == "union":
            result = skip_union([self.skipper(branch) for branch in node.branches])
        else:
            result = self._skip_record(node)
        self._skippers[node] = result
        return result

    def _skip_record(self, node: AvroType) -> Skip:
        cell: list[Op] = []

        def forward(buf: Any, pos: int, out: list) -> int:
            return cell[0](buf, pos, out)

        # A reference to the record inside itself walks through ``forward`` (not regular).
        self._skippers[node] = Skip(forward)
        result = skip_sequence([self.skipper(child) for _name, child in node.fields])
        cell.append(result.fast())
        return result

    def record(self, node: AvroType, trie: Trie, need_rest: bool, prefix: str) -> list[Skip | Op]:
        """Compile the fields of record ``node`` up to the last one in ``trie`` (or all)."""
        positions = {name: i for i, (name, _child) in enumerate(node.fields)}
        missing = [name for name in trie if name not in positions]
        if missing:
            raise KeyPathError(f"record {node.name} has no field {prefix}{missing[0]}")
        last = max(positions[name] for name in trie)
        stop = len(node.fields) if need_rest else last + 1
        steps: list[Skip | Op] = []
        for i in range(stop):
            name, child = node.fields[i]
            wanted = trie.get(name, _ABSENT)
            where = f"{prefix}{name}"
            if wanted is _ABSENT:
                steps.append(self.skipper(child))
            elif not isinstance(wanted, dict):
                steps.append(leaf(child, wanted, where))
            elif child.kind == "record":
                steps += self.record(child, wanted, need_rest or i < last, f"{where}.")
            elif child.kind == "union":
                steps.append(self.union(child, wanted, need_rest or i < last, f"{where}."))
            else:
                raise KeyPathError(f"{where} is a {child.kind}, not a record")
        return steps

    def union(self, node: AvroType, trie: Trie, need_rest: bool, prefix: str) -> Op:
        """Compile a step choosing, per union branch, the steps reading ``trie`` (or none)."""
        wanted = list(_paths(trie))
        found: set[tuple[str, ...]] = set()
        branches: list[list[Op]] = []
        for branch in node.branches:
            held = [(path, slot) for path, slot in wanted if has_path(branch, path)]
            if branch.kind != "record" or not held:
                branches.append(finish([self.skipper(branch)] if need_rest else []))
                continue
            found.update(path for path, _slot in held)
            branches.append(finish(self.record(branch, build_trie(held), need_rest, prefix)))
        for path, _slot in wanted:
            if path not in found:
                raise KeyPathError(f"no branch of union {prefix[:-1]} has {prefix}{'.'.join(path)}")
        return descend_union(branches)


# ------------------------------------------------------------------------------- reader


class KeyReader:
    """Read a few fields of bare Avro bodies of one schema, in one pass, without decoding.

    Parameters
    ----------
    schema : ParsedSchema or dict or list or str
        Writer schema: a :class:`~brokerapp.wire.codecs.ParsedSchema` (its fastavro-parsed form is
        used), fastavro's ``parse_schema`` output, or the raw schema JSON (dict, or text).
        Named types may be referred to by name after their definition, with namespaces.
    paths : sequence of tuple of str
        Field paths to read, e.g. ``[("diaSource", "diaObjectId")]``. Every path but the last
        element names records (or unions holding records) to enter; the last names a field of
        a primitive type, ``enum``, ``fixed``, or a union of those.
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.DecodeError` raised on a bad body.

    Attributes
    ----------
    paths : tuple of tuple of str
        As given.
    mode : str
        As given.
    name : str
        Full name of the top-level record, used in error messages.
    steps : int
        Number of compiled steps run per body (skips of constant-size runs count once).

    Raises
    ------
    KeyPathError
        If a path is empty, repeats or nests in another path, is missing from the schema,
        crosses a field that is not a record, or ends on a record, array or map.

    Notes
    -----
    Values come back in the order of ``paths``. A field inside a union branch that the body
    did not take (e.g. ``diaObject`` null) reads as None, like a null field. Logical types
    read as their underlying type (a ``timestamp-micros`` as its int). Reading stops right
    after the last requested field, so the rest of the body is neither read nor checked.
    """

    def __init__(
        self,
        schema: ParsedSchema | Mapping | list | str,
        paths: Sequence[Sequence[str]],
        mode: str = "confluent",
    ):
        self.paths = tuple(tuple(path) for path in paths)
        self.mode = mode
        if not self.paths:
            raise KeyPathError("no field paths to read")
        for path in self.paths:
            if not path or not all(isinstance(name, str) for name in path):
                raise KeyPathError(f"a field path is a non-empty tuple of names, not {path!r}")
        root = schema_graph(schema)
        self.name = root.name or root.kind
        for path in self.paths:
            if not has_path(root, path):
                raise KeyPathError(f"schema {self.name} has no field {explain_path(root, path)}")
        trie = build_trie((path, slot) for slot, path in enumerate(self.paths))
        compiler = Compiler()
        if root.kind == "record":
            steps = compiler.record(root, trie, False, "")
        else:
            steps = [compiler.union(root, trie, False, "")]
        ops = tuple(finish(steps))
        self.steps = len(ops)
        self._run = self._runner(ops, len(self.paths))

    def _runner(self, ops: tuple[Op, ...], size: int) -> Callable[..., list]:
        mode = self.mode
        context = f"reading {', '.join('.'.join(path) for path in self.paths)} of {self.name}"

        def run(body: Any, start: int = 0) -> list:
            out = [None] * size
            pos = start
            try:
                for op in ops:
                    pos = op(body, pos, out)
            except (IndexError, struct.error, OverflowError) as exc:
                # Reading past the end; OverflowError: past any end (a corrupt huge length).
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
            return out

        return run

    def read(self, body: bytes | bytearray | memoryview, start: int = 0) -> list:
        """Read the requested fields of one body.

        Parameters
        ----------
        body : bytes or bytearray or memoryview
            Bare Avro binary encoding of one record of the schema (from ``start`` on).
        start : int, optional
            Offset of the record in ``body``; e.g. 5 for a whole Confluent-framed message,
            which saves slicing it (a ``memoryview`` is slower to index than ``bytes``).

        Returns
        -------
        list
            One value per path, in the order of :attr:`paths`: int, float, bool, str, bytes
            or None.

        Raises
        ------
        DecodeError
            If the body ends before the last requested field, or the bytes walked are not
            valid Avro (negative length or block size, union or enum index out of range,
            over-long varint, invalid UTF-8 in a string read).
        """
        return self._run(body, start)

    def __repr__(self) -> str:
        paths = ", ".join(".".join(path) for path in self.paths)
        return f"KeyReader({self.name}: {paths}; {self.steps} steps)"


# ---------------------------------------------------------------------------- object keys


def _lsst_missing(value: Any) -> bool:
    """LsstProfile's "no such object": null, 0 (Rubin) or a missing marker (-999)."""
    if value.__class__ is int:  # the usual case, as is_missing would say
        return value == NO_LSST_ID or value == MISSING_NUMBER
    return value == NO_LSST_ID or is_missing(value)


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


def object_key_reader(
    schema: ParsedSchema | Mapping | list | str, *, exact: bool = False, mode: str = "confluent"
) -> KeyFunction:
    """Compile the message-key function of one ZTF or LSST alert schema.

    Parameters
    ----------
    schema : ParsedSchema or dict or list or str
        The writer schema of the bodies (see :class:`KeyReader`).
    exact : bool, optional
        LSST only: follow :meth:`brokerapp.model.profiles.LsstProfile.object_id`'s order literally
        (``diaObject.diaObjectId`` before ``diaSource.diaObjectId``), walking over the previous
        detections of every alert. The default reads ``diaSource.diaObjectId`` first, which
        gives the same key for Rubin alerts at a fraction of the cost (see the module notes).
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.DecodeError` raised.

    Returns
    -------
    KeyFunction
        ``key(body, start=0) -> bytes``: the UTF-8 of the object ID (ZTF ``objectId``; LSST
        ``diaObjectId`` in decimal), falling back as the module notes describe; raises
        :class:`~brokerapp.wire.codecs.DecodeError` for a body that cannot be walked or that
        carries neither an object ID nor an alert ID.

    Raises
    ------
    DecodeError
        If the schema is neither a ZTF alert (top-level ``objectId`` and ``candidate``) nor an
        LSST alert (top-level ``diaSource``), or has none of the key fields; or is no valid
        schema at all.
    """
    try:
        root = schema_graph(schema)
    except (KeyPathError, KeyError, TypeError, ValueError) as exc:
        raise DecodeError(mode, f"cannot compile a key reader: {exc}") from exc
    name = schema.name if isinstance(schema, ParsedSchema) else root.name or root.kind
    top = {field_name for field_name, _child in root.fields} if root.kind == "record" else set()
    if {"objectId", "candidate"} <= top:
        survey = "ztf"
        first = _readable(root, [_Choice(("objectId",), is_missing)])
        then = [_Choice(("candid",), _none), _Choice(("candidate", "candid"), _none)]
    elif "diaSource" in top:
        survey = "lsst"
        dia_object = _Choice(("diaObject", "diaObjectId"), _lsst_missing)
        dia_source = _Choice(("diaSource", "diaObjectId"), _lsst_missing)
        first = [dia_object, dia_source] if exact else [dia_source]
        then = [] if exact else [dia_object]
        then += [
            _Choice(("diaSource", "ssObjectId"), _lsst_missing),
            _Choice(("diaSource", "diaSourceId"), _none),
            _Choice(("diaSourceId",), _none),
            _Choice(("alertId",), _none),
        ]
        first = _readable(root, first)
    else:
        reason = (
            f"schema {name} is neither a ZTF alert (objectId, candidate) nor an LSST alert "
            f"(diaSource): no key reader"
        )
        raise DecodeError(mode, reason)
    then = _readable(root, then)
    if not first:
        first, then = then[:1], then[1:]
    if not first:
        raise DecodeError(mode, f"{survey} schema {name} has no readable object or alert ID field")
    return _key_function(schema, first, then, mode, survey)


class KeyReaders:
    """Compiled key functions by schema fingerprint: each schema is compiled once.

    Parameters
    ----------
    exact : bool, optional
        Passed to :func:`object_key_reader`.
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.DecodeError` raised.

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
    compiling again. Like :class:`~brokerapp.wire.codecs.SchemaCache`, this holds one entry per
    distinct schema and has no locking (one event loop or thread).
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
