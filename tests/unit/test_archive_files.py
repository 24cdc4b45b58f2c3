"""Archive files appear whole under a local path or an fsspec URL; a rewrite replaces."""

import asyncio
import os
import uuid

import fsspec
import pytest

from brokerapp.adapters.archive import files
from brokerapp.model.settings import load_settings


def test_a_file_appears_with_its_bytes_and_no_temporary_is_left(tmp_path):
    root = str(tmp_path / "arch")
    files.write_atomic(root, "ztf/night=20260701/a.avro", b"first")
    target = tmp_path / "arch" / "ztf" / "night=20260701" / "a.avro"
    assert target.read_bytes() == b"first"
    assert os.listdir(target.parent) == ["a.avro"]
    assert files.list_files(root) == ["ztf/night=20260701/a.avro"]


def test_a_rewrite_replaces_the_file_and_adds_none(tmp_path):
    root = str(tmp_path)
    files.write_atomic(root, "x/b.bin", b"one")
    inode = os.stat(tmp_path / "x" / "b.bin").st_ino
    files.write_atomic(root, "x/b.bin", b"two, longer")
    assert (tmp_path / "x" / "b.bin").read_bytes() == b"two, longer"
    assert os.stat(tmp_path / "x" / "b.bin").st_ino != inode  # renamed in, not written over
    assert files.list_files(root) == ["x/b.bin"]


def test_a_file_url_is_a_local_root(tmp_path):
    files.write_atomic(f"file://{tmp_path}", "c.txt", b"c")
    assert (tmp_path / "c.txt").read_bytes() == b"c"
    assert files.read_bytes(f"file://{tmp_path}", "c.txt") == b"c"


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        files.write_atomic(str(tmp_path), "d/e.bin", b"x")
    assert os.listdir(tmp_path / "d") == []


def test_paths_outside_the_root_are_refused(tmp_path):
    for bad in ("../escape", "/etc/passwd", "", "a/../../b"):
        with pytest.raises(ValueError):
            files.write_atomic(str(tmp_path), bad, b"x")


def test_an_fsspec_memory_root_gets_the_file_and_no_temporary():
    root = f"memory://archive-test-{uuid.uuid4().hex}"
    files.write_atomic(root, "rubin/night=20260702/f.parquet", b"pq")
    files.write_atomic(root, "rubin/night=20260702/f.parquet", b"pq2")
    fs = fsspec.filesystem("memory")
    assert files.read_bytes(root, "rubin/night=20260702/f.parquet") == b"pq2"
    assert files.exists(root, "rubin/night=20260702/f.parquet")
    assert files.list_files(root) == ["rubin/night=20260702/f.parquet"]
    base = root.removeprefix("memory://")
    assert [p.rsplit("/", 1)[1] for p in fs.find(base)] == ["f.parquet"]


def test_the_async_wrapper_writes(tmp_path):
    asyncio.run(files.awrite_atomic(str(tmp_path), "g/h", b"h"))
    assert (tmp_path / "g" / "h").read_bytes() == b"h"


def test_the_root_defaults_under_the_home(tmp_path):
    assert load_settings(home=tmp_path).archive_url == str(tmp_path.resolve() / "archive")
    assert load_settings(home=tmp_path, archive_root="s3://b/p").archive_url == "s3://b/p"
