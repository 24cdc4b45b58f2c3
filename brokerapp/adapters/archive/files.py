"""Atomic file writes under an archive root that is a local path or any fsspec URL.

The archivers (Avro backup, Parquet, light curves, cutouts) write whole files under one root
(setting ``archive_root``, read as ``Settings.archive_url``): a local directory such as
``/data/archive`` or ``file:///data/archive``, or any URL fsspec knows (``s3://bucket/x``,
``memory://x`` in tests). Paths below the root (``relpath``) use ``/`` on every platform.

A file appears atomically, so a reader never sees a partial one:

- local root: the bytes go to a hidden temporary name in the target's own directory
  (``.<name>.<random>.tmp``), are flushed and ``fsync``-ed, then :func:`os.replace`
  puts them in place (atomic on POSIX within one file system) and the directory is
  ``fsync``-ed so the rename survives a crash;
- other roots: ``pipe_file`` to the temporary name, then ``mv`` onto the target (object
  stores have no partial objects: an upload is visible whole or not at all).

Writing the same path again replaces the file (a replay overwrites, never duplicates).
These functions block: agents call the ``a``-prefixed wrappers, which run them in a thread
(:func:`asyncio.to_thread`) so the event loop keeps serving Kafka.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import secrets
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

__all__ = [
    "awrite_atomic",
    "exists",
    "is_local",
    "list_files",
    "local_path",
    "read_bytes",
    "stat_token",
    "write_atomic",
]


def is_local(root: str) -> bool:
    """Whether ``root`` is a local path (plain path or ``file://`` URL).

    Parameters
    ----------
    root : str
        Archive root.

    Returns
    -------
    bool
        True for a path on this machine's file system.
    """
    return "://" not in root or root.startswith("file://")


def local_path(root: str) -> Path:
    """Return the local directory of a local ``root``.

    Parameters
    ----------
    root : str
        A plain path or a ``file://`` URL.

    Returns
    -------
    Path
        The directory, absolute.
    """
    return Path(root.removeprefix("file://")).resolve()


def _clean(relpath: str) -> str:
    """``relpath`` normalised, refusing anything that escapes the root."""
    norm = posixpath.normpath(relpath.replace("\\", "/"))
    if norm.startswith(("/", "..")) or norm in (".", ""):
        raise ValueError(f"not a relative path under the archive root: {relpath!r}")
    return norm


def _tmp_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(6)}.tmp"


def _write_local(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(_tmp_name(target.name))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remote(root: str, relpath: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, base = fsspec.core.url_to_fs(root)
    return fs, posixpath.join(base.rstrip("/"), _clean(relpath))


def write_atomic(root: str, relpath: str, data: bytes) -> None:
    """Write ``data`` to ``root/relpath`` so that the file appears whole or not at all.

    Parameters
    ----------
    root : str
        Archive root: a local path, a ``file://`` URL or any fsspec URL.
    relpath : str
        Path of the file below the root (``/``-separated; no ``..``, not absolute).
        Missing directories are created.
    data : bytes
        The file's whole content; an existing file is replaced.

    Raises
    ------
    ValueError
        If ``relpath`` is empty, absolute or leaves the root.
    OSError
        If the write or the rename fails (the temporary file is removed locally).
    """
    if is_local(root):
        _write_local(local_path(root) / _clean(relpath), data)
        return
    fs, target = _remote(root, relpath)
    parent = posixpath.dirname(target)
    fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, _tmp_name(posixpath.basename(target)))
    fs.pipe_file(tmp, data)
    try:
        fs.mv(tmp, target)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


async def awrite_atomic(root: str, relpath: str, data: bytes) -> None:
    """:func:`write_atomic` in a worker thread (for agents).

    Parameters
    ----------
    root : str
        Archive root.
    relpath : str
        Path below the root.
    data : bytes
        The file's content.
    """
    await asyncio.to_thread(write_atomic, root, relpath, data)


def read_bytes(root: str, relpath: str) -> bytes:
    """Read the content of ``root/relpath``.

    Parameters
    ----------
    root : str
        Archive root.
    relpath : str
        Path below the root.

    Returns
    -------
    bytes
        The file's bytes.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    """
    if is_local(root):
        return (local_path(root) / _clean(relpath)).read_bytes()
    fs, target = _remote(root, relpath)
    return bytes(fs.cat_file(target))


def exists(root: str, relpath: str) -> bool:
    """Whether ``root/relpath`` is a file.

    Parameters
    ----------
    root : str
        Archive root.
    relpath : str
        Path below the root.

    Returns
    -------
    bool
        True if the file exists.
    """
    if is_local(root):
        return (local_path(root) / _clean(relpath)).is_file()
    fs, target = _remote(root, relpath)
    return bool(fs.isfile(target))


def stat_token(root: str, relpath: str) -> str | None:
    """Return what identifies the current version of ``root/relpath``, None if absent.

    Locally size, modification time (ns) and inode: a rename puts a new inode in place, so
    any rewrite changes it. Elsewhere the file system's own ``info`` (size, ETag or
    modification time, whatever it reports).

    Parameters
    ----------
    root : str
        Archive root.
    relpath : str
        Path below the root.

    Returns
    -------
    str or None
        Compare it with an earlier value to learn whether someone rewrote the file.
    """
    if is_local(root):
        try:
            st = (local_path(root) / _clean(relpath)).stat()
        except FileNotFoundError:
            return None
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    fs, target = _remote(root, relpath)
    try:
        info = fs.info(target)
    except FileNotFoundError:
        return None
    return repr(sorted((k, str(v)) for k, v in info.items() if k != "name"))


def list_files(root: str, prefix: str = "") -> list[str]:
    """Every finished file under ``root/prefix`` (temporary files left out), sorted.

    Parameters
    ----------
    root : str
        Archive root.
    prefix : str
        Sub-folder to list (default: the whole root).

    Returns
    -------
    list of str
        Paths relative to the root, ``/``-separated.
    """
    if is_local(root):
        fs: fsspec.AbstractFileSystem = LocalFileSystem()
        base = str(local_path(root))
    else:
        fs, base = fsspec.core.url_to_fs(root)
        base = base.rstrip("/")
    top = posixpath.join(base, _clean(prefix)) if prefix else base
    if not fs.exists(top):
        return []
    found = []
    for path in fs.find(top):
        rel = posixpath.relpath(fs._strip_protocol(path), fs._strip_protocol(base))
        if not posixpath.basename(rel).startswith("."):
            found.append(rel)
    return sorted(found)
