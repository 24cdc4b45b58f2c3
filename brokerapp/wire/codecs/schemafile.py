"""Schema files: bare Avro bodies whose schema is agreed out of band in ``.avsc`` files.

A ``.avsc`` file is one Avro schema as JSON. A survey's schema is often split over several:
the ``lsst-alert-packet`` layout ``schema/<major>/<minor>/lsst.v<M>_<m>.alert.avsc`` has a
top-level file that refers by name to sub-records (``lsst.v9_0.diaSource`` ...) kept in sibling
files, and ZTF's schema directory does the same. :func:`load_avsc` resolves those references
into one self-contained schema (as a registry wants it); :class:`SchemaFileCodec` reads and
writes bare Avro bodies with it, the messages carrying no header at all.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brokerapp.wire.codecs.body import read_body, write_body
from brokerapp.wire.codecs.schemas import ParsedSchema, SchemaCache, load_schema_json, parse_schema

__all__ = ["SchemaFileCodec", "load_avsc"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED_TYPES = frozenset({"record", "error", "enum", "fixed"})


def _full_name(name: str, namespace: str | None) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _inline_references(
    node: Any, namespace: str | None, library: Mapping[str, dict], defined: set[str]
) -> Any:
    """Copy ``node`` with named-type references to ``library`` types inlined at first use."""
    if isinstance(node, list):
        return [_inline_references(item, namespace, library, defined) for item in node]
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node
        name = node if node in library else _full_name(node, namespace)
        if name in defined or name not in library:
            return node  # already defined above, or left for the parser to reject
        return _inline_references(library[name], None, library, defined)
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    out = dict(node)
    if kind in _NAMED_TYPES:
        namespace = node.get("namespace", namespace)
        full = _full_name(node["name"], namespace)
        defined.add(full)
        if "." in node["name"]:
            namespace = full.rsplit(".", 1)[0]
        if kind in {"record", "error"}:
            out["fields"] = [
                {**fld, "type": _inline_references(fld["type"], namespace, library, defined)}
                for fld in node.get("fields", [])
            ]
        return out
    if kind == "array":
        out["items"] = _inline_references(node["items"], namespace, library, defined)
    elif kind == "map":
        out["values"] = _inline_references(node["values"], namespace, library, defined)
    elif isinstance(kind, list | dict) or (isinstance(kind, str) and kind not in _PRIMITIVES):
        out["type"] = _inline_references(kind, namespace, library, defined)
    return out


def load_avsc(path: str | os.PathLike[str]) -> dict:
    """Load a top-level ``.avsc`` file as one self-contained schema.

    Named types the file refers to but does not define are taken from the other ``.avsc``
    files of the same directory, matched by the full name they define (whatever the file is
    called: ZTF's ``candidate.avsc`` defines ``ztf.alert.candidate``, lsst-alert-packet's
    ``lsst.v9_0.diaSource.avsc`` defines ``lsst.v9_0.diaSource``), and inlined at first use.

    Parameters
    ----------
    path : str or os.PathLike
        The top-level schema file.

    Returns
    -------
    dict
        The schema JSON with every reference resolved (suitable for a schema registry).

    Raises
    ------
    DecodeError
        ``mode="schemafile"`` if a file is not valid JSON.
    OSError
        If a file cannot be read.
    """
    top_path = Path(path)
    library: dict[str, dict] = {}
    for sibling in sorted(top_path.parent.glob("*.avsc")):
        if sibling == top_path:
            continue
        definition = load_schema_json(sibling.read_text(), "schemafile")
        if isinstance(definition, dict) and definition.get("type") in _NAMED_TYPES:
            library[_full_name(definition["name"], definition.get("namespace"))] = definition
    top = load_schema_json(top_path.read_text(), "schemafile")
    return _inline_references(top, None, library, set())


class SchemaFileCodec:
    """Bare Avro bodies whose schema lives in .avsc files on disk (lsst-alert-packet layout).

    Parameters
    ----------
    schema : ParsedSchema
        The schema bodies are read as and written with.
    writer_schema : ParsedSchema or None, optional
        Schema the bodies were actually written with, when it differs from ``schema``: bodies
        are then read with Avro schema resolution (fields missing from the writer take their
        defaults in ``schema``, extra writer fields are skipped).

    Attributes
    ----------
    schema : ParsedSchema
        As given.
    writer_schema : ParsedSchema or None
        As given.
    """

    mode = "schemafile"

    def __init__(self, schema: ParsedSchema, writer_schema: ParsedSchema | None = None):
        self.schema = schema
        self.writer_schema = None if writer_schema == schema else writer_schema

    @classmethod
    def from_avsc(
        cls, path: str | os.PathLike[str], cache: SchemaCache | None = None
    ) -> SchemaFileCodec:
        """Build a codec from a top-level ``.avsc`` file and its sibling files.

        Parameters
        ----------
        path : str or os.PathLike
            Top-level schema file; see :func:`load_avsc` for how references are resolved.
        cache : SchemaCache or None, optional
            Cache to intern the schema in.

        Returns
        -------
        SchemaFileCodec
            The codec.

        Raises
        ------
        DecodeError
            ``mode="schemafile"`` if the files do not make a valid Avro schema.
        """
        raw = load_avsc(path)
        schema = (
            parse_schema(raw, mode=cls.mode) if cache is None else cache.intern(raw, mode=cls.mode)
        )
        return cls(schema)

    @classmethod
    def lsst(cls, version: str = "9.0", cache: SchemaCache | None = None) -> SchemaFileCodec:
        """Build a codec for an LSST alert schema version shipped by ``lsst-alert-packet``.

        Parameters
        ----------
        version : str, optional
            ``"<major>.<minor>"``, e.g. ``"9.0"``.
        cache : SchemaCache or None, optional
            Cache to intern the schema in.

        Returns
        -------
        SchemaFileCodec
            The codec for ``lsst.v<major>_<minor>.alert``.

        Raises
        ------
        ValueError
            If ``version`` is not ``"<major>.<minor>"``.
        FileNotFoundError
            If the installed package has no such version.
        """
        from lsst.alert.packet.schema import get_schema_path

        major, sep, minor = version.partition(".")
        if not (sep and major.isdigit() and minor.isdigit()):
            raise ValueError(f"LSST schema version must look like '9.0', got {version!r}")
        path = Path(get_schema_path(int(major), int(minor))) / (
            f"lsst.v{int(major)}_{int(minor)}.alert.avsc"
        )
        if not path.is_file():
            raise FileNotFoundError(f"lsst-alert-packet has no schema {version}: {path}")
        return cls.from_avsc(path, cache=cache)

    def decode(self, data: bytes) -> dict:
        """Decode one bare Avro body.

        Parameters
        ----------
        data : bytes
            The body (no header).

        Returns
        -------
        dict
            The record, shaped by :attr:`schema`.

        Raises
        ------
        DecodeError
            ``mode="schemafile"``: truncated, corrupt or over-long body.
        """
        buffer = io.BytesIO(data)
        if self.writer_schema is None:
            return read_body(buffer, len(data), self.schema, self.mode, None)
        return read_body(buffer, len(data), self.writer_schema, self.mode, None, self.schema)

    def encode(self, record: Mapping) -> bytes:
        """Encode one record as a bare Avro body with :attr:`schema`.

        Parameters
        ----------
        record : Mapping
            The alert.

        Returns
        -------
        bytes
            The body.

        Raises
        ------
        EncodeError
            If the record does not match the schema.
        """
        return write_body(self.schema, record, self.mode)
