"""The field reader: a few fields of bare Avro bodies of one schema, in one pass.

:class:`KeyReader` compiles, once per schema, a flat tuple of small closures (the steps of
:mod:`brokerapp.wire.avrokey.ops`) for the requested field paths: one per run of fields to skip,
one per field to read, nested records inlined, and one per union on the way that picks the
branch at run time. Reading a body runs that tuple once, in a single pass, and stops right
after the last requested field: nothing after it (cutouts, previous detections) is touched.
Nothing recurses over the schema at run time.

Only the bytes walked over are checked: a body that is corrupt *after* the requested fields
reads without error here (a full decode downstream will reject it). Within the walked bytes,
reading past the end, negative lengths or block sizes, out-of-range union indexes and invalid
UTF-8 raise :class:`~brokerapp.wire.codecs.errors.DecodeError` (``mode`` as given,
``schema_id`` None: the caller knows it). A schema that lacks a requested field, or whose
field on the path is not a record, or whose target is not a primitive (or a union of
primitives), raises :class:`~brokerapp.wire.avrokey.graph.KeyPathError` (a ``ValueError``)
when the reader is built.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from brokerapp.wire.avrokey.graph import (
    AvroType,
    KeyPathError,
    explain_path,
    has_path,
    schema_graph,
)
from brokerapp.wire.avrokey.ops import (
    CONSTANT_SIZES,
    SIZED,
    VARINT,
    MalformedError,
    Op,
    Skip,
    constant_skip,
    descend_union,
    leaf,
    skip_blocks,
    skip_sequence,
    skip_union,
)
from brokerapp.wire.codecs.errors import DecodeError
from brokerapp.wire.codecs.schemas import ParsedSchema

__all__ = ["KeyReader", "StepCompiler"]

_ABSENT = object()

Trie = dict[str, Any]
"""Field name -> slot (int, a field to read) or a nested :data:`Trie` (a record to enter)."""


def _trie(paths: Iterable[tuple[tuple[str, ...], int]]) -> Trie:
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


def _finish(steps: Iterable[Skip | Op]) -> list[Op]:
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


class StepCompiler:
    """Turns a :class:`AvroType` graph and a :data:`Trie` into a flat tuple of steps.

    Public for the other readers of the wire layer (:mod:`brokerapp.wire.lean` compiles its
    cutout stripper with it); one compiler caches the skip step of each type it has seen.
    """

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
                branches.append(_finish([self.skipper(branch)] if need_rest else []))
                continue
            found.update(path for path, _slot in held)
            branches.append(_finish(self.record(branch, _trie(held), need_rest, prefix)))
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
        Writer schema: a :class:`~brokerapp.wire.codecs.schemas.ParsedSchema` (its
        fastavro-parsed form is used), fastavro's ``parse_schema`` output, or the raw schema
        JSON (dict, or text). Named types may be referred to by name after their definition,
        with namespaces.
    paths : sequence of tuple of str
        Field paths to read, e.g. ``[("source", "id"), ("sourceId",)]``. Every path but
        the last element names records (or unions holding records) to enter; the last names a
        field of a primitive type, ``enum``, ``fixed``, or a union of those.
    mode : str, optional
        ``mode`` of the :class:`~brokerapp.wire.codecs.errors.DecodeError` raised on a bad body.

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
    did not take (e.g. a field of a record-or-null that is null) reads as None, like a null
    field. Logical types read as their underlying type (a ``timestamp-micros`` as its int).
    Reading stops right after the last requested field, so the rest of the body is neither
    read nor checked.
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
        trie = _trie((path, slot) for slot, path in enumerate(self.paths))
        compiler = StepCompiler()
        if root.kind == "record":
            steps = compiler.record(root, trie, False, "")
        else:
            steps = [compiler.union(root, trie, False, "")]
        ops = tuple(_finish(steps))
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
