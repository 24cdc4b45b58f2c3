r"""The compiled steps of the field reader: walking over Avro values, and reading a few.

A step is a closure ``op(buf, pos, out) -> new pos`` over one body ``buf``; reading steps
store their value into ``out``. The steps follow the Avro binary encoding, in which a record
is its fields' encodings concatenated in schema order, with no field names, tags or lengths,
so a field can only be reached by walking past the ones before it:

* ``null``: nothing; ``boolean``: one byte; ``float``: 4 bytes; ``double``: 8 bytes
  (little-endian IEEE 754); ``fixed``: its declared size;
* ``int``, ``long``: a zigzag varint (7 bits a byte, high bit = "more bytes follow", then
  ``n -> (n >> 1) ^ -(n & 1)``); ``enum``: the symbol index as such a varint;
* ``bytes``, ``string``: a varint length then that many bytes (UTF-8 for strings);
* ``array``, ``map``: blocks, each a varint item count then the items (a map item is a string
  key then the value), ended by a block of count 0. A *negative* count ``-n`` means ``n``
  items preceded by the block's size in bytes, which lets a reader jump over the block in one
  step (fastavro never writes such blocks, other writers may);
* ``union``: the branch index as a varint, then the value of that branch;
* ``record``: its fields, recursively.

Walking over a value (a :class:`Skip`) uses the cheapest form it allows: a run of constant
size is one jump; a run of *regular* values (numbers, booleans, enums, fixed, and records and
unions of those: no length or count prefixes) is one match of a regular expression compiled
from the schema, which ``re`` runs in C (a union ``["null", "long"]`` becomes
``(?:\x00|\x02[\x80-\xff]*[\x00-\x7f])``); strings, bytes, arrays and maps are walked by
closures (a negative-count block in one jump by its byte size). When a regular expression does
not match, the closures walk the same bytes again to say what is wrong.

Bytes that break the encoding raise :class:`MalformedError`; reading past the end raises
``IndexError`` or ``struct.error``: the reader turns both into a
:class:`~brokerapp.wire.codecs.errors.DecodeError`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from brokerapp.wire.avrokey.graph import PRIMITIVES, AvroType, KeyPathError

__all__ = [
    "CONSTANT_SIZES",
    "READABLE",
    "SIZED",
    "VARINT",
    "MalformedError",
    "Op",
    "Skip",
    "constant_skip",
    "descend_union",
    "leaf",
    "skip_blocks",
    "skip_sequence",
    "skip_union",
    "value_reader",
]

Op = Callable[[Any, int, list], int]
"""A compiled step: ``op(buf, pos, out) -> new pos``; reading steps store into ``out``."""

CONSTANT_SIZES = {"null": 0, "boolean": 1, "float": 4, "double": 8}
"""Byte size of the primitive types whose encoding has a constant size."""
READABLE = frozenset(PRIMITIVES | {"enum", "fixed"})
"""Kinds of value a reading step can read (also as the branches of a union)."""
_MAX_VARINT_SHIFT = 63
"""Shift of the 10th byte of a varint; a 64-bit long never needs an 11th."""
_UINT64 = 2**64 - 1
_ONE_BYTE = 0x80
_MAX_PATTERN = 100_000
"""Longest regular expression built for a run of regular fields (bytes of pattern)."""
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class MalformedError(Exception):
    """The walked bytes break the encoding (negative length, bad union index ...)."""


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

    A run of regular fields is skipped by one ``re`` match in C, several times faster than
    one closure call per field. :meth:`fast` picks the quickest step.

    Parameters
    ----------
    closure : Op
        A step that always works, and raises the precise error on bad bytes.
    size : int or None, optional
        The value's byte size, when constant.
    pattern : bytes or None, optional
        A regular expression matching exactly the encoding, when the type is regular (no
        lengths or counts: numbers, booleans, enums, fixed, records and unions of those).

    Attributes
    ----------
    closure : Op
        As given.
    size : int or None
        As given.
    pattern : bytes or None
        As given.
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
    """Walk over a value of constant byte size.

    Parameters
    ----------
    size : int
        The size in bytes.

    Returns
    -------
    Skip
        One jump, and its regular expression (any ``size`` bytes).
    """
    pattern = b"" if size == 0 else b"." if size == 1 else b".{%d}" % size
    return Skip(_advance(size), size, pattern)


_NOTHING = constant_skip(0)
VARINT = Skip(_skip_varint, None, rb"[\x80-\xff]*[\x00-\x7f]")
"""Walk over an ``int``, ``long`` or ``enum`` (one varint)."""
SIZED = Skip(_skip_sized)
"""Walk over a ``bytes`` or ``string`` (a length, then that many bytes)."""


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
    """Walk over the blocks of an array, or of a map.

    Parameters
    ----------
    item : Skip
        Walk over one item (for a map: over its key and value).

    Returns
    -------
    Skip
        A closure: blocks of constant-size items and blocks with a byte size are jumped
        over, other items walked one by one.
    """
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
    """Walk over a union: its branch index, then the value of that branch.

    Parameters
    ----------
    branches : sequence of Skip
        Walk over each branch, in index order.

    Returns
    -------
    Skip
        A closure choosing the branch, and a regular expression when every branch has one.
    """
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
    """Walk over values one after another (the fields of a record, a run of fields).

    Parameters
    ----------
    skips : iterable of Skip
        Walk over each value, in encoding order.

    Returns
    -------
    Skip
        Adjacent constant sizes merged into one jump, runs of regular values into one
        regular expression (up to a bounded length), the rest chained.
    """
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
    """Compile the step reading one value of ``node`` into ``out[slot]``.

    Parameters
    ----------
    node : AvroType
        Type of the field read: a primitive, ``enum``, ``fixed`` or a union of those.
    slot : int
        Index in ``out`` of the value.
    where : str
        The field's path, for error messages.

    Returns
    -------
    Op
        The step.

    Raises
    ------
    KeyPathError
        If ``node`` is a record, array or map, or a union holds one or a union.
    """
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
    """Compile the step reading the branch index of a union on the path, then its steps.

    Parameters
    ----------
    branch_steps : sequence of sequence of Op
        The steps to run for each branch, in index order.

    Returns
    -------
    Op
        The step.
    """
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


def value_reader(node: AvroType, where: str) -> Reader:
    """Compile a reader of one whole value of any type: ``read(buf, pos) -> (value, pos)``.

    Values come out as fastavro gives them without logical types: records as dicts (fields in
    schema order), arrays as lists, maps as dicts, enums as their symbol, ``fixed`` and
    ``bytes`` as bytes, unions as the value of their branch. Used for the few fields taken
    whole from a body (e.g. the image cutouts), not on the key reader's path.

    Parameters
    ----------
    node : AvroType
        The value's type.
    where : str
        The field's path, for error messages.

    Returns
    -------
    callable
        ``read(buf, pos) -> (value, position after it)``; raises :class:`MalformedError`,
        ``IndexError`` or ``struct.error`` on bad bytes, as the steps do.
    """
    return _WholeReaders().compile(node, where)


class _WholeReaders:
    """Compiles whole-value readers, one per type node (a recursive record reads itself)."""

    def __init__(self) -> None:
        self._known: dict[int, Reader] = {}

    def compile(self, node: AvroType, where: str) -> Reader:
        known = self._known.get(id(node))
        if known is not None:
            return known
        if node.kind in READABLE:
            result = _value_reader(node, where)
        elif node.kind == "union":
            result = self._union(node, where)
        elif node.kind in ("array", "map"):
            result = self._blocks(node, where)
        else:
            result = self._record(node, where)
        self._known[id(node)] = result
        return result

    def _union(self, node: AvroType, where: str) -> Reader:
        readers = tuple(self.compile(branch, where) for branch in node.branches)
        count = len(readers)

        def read_union(buf: Any, pos: int) -> tuple[Any, int]:
            index, pos = _index(buf, pos, count)
            return readers[index](buf, pos)

        return read_union

    def _blocks(self, node: AvroType, where: str) -> Reader:
        if node.items is None:  # never: the resolver gives every array and map its items
            raise KeyPathError(f"{where}: {node.kind} without an item type")
        item = self.compile(node.items, where)
        is_map = node.kind == "map"

        def read_blocks(buf: Any, pos: int) -> tuple[Any, int]:
            items: list[Any] = []
            while True:
                count, _size, pos = _block_count(buf, pos)
                if count == 0:
                    return (dict(items) if is_map else items), pos
                for _ in range(count):
                    if is_map:
                        key, pos = _read_string(buf, pos)
                        value, pos = item(buf, pos)
                        items.append((key, value))
                    else:
                        value, pos = item(buf, pos)
                        items.append(value)

        return read_blocks

    def _record(self, node: AvroType, where: str) -> Reader:
        cell: list[Reader] = []

        def forward(buf: Any, pos: int) -> tuple[Any, int]:
            return cell[0](buf, pos)

        self._known[id(node)] = forward  # before the fields: a record may refer to itself
        fields = tuple(
            (name, self.compile(child, f"{where}.{name}")) for name, child in node.fields
        )

        def read_record(buf: Any, pos: int) -> tuple[Any, int]:
            record = {}
            for name, read in fields:
                record[name], pos = read(buf, pos)
            return record, pos

        cell.append(read_record)
        return read_record
