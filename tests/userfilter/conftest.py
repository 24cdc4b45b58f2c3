"""Fixtures of the sandbox tier: real bubblewrap sandboxes (no Kafka needed).

These tests start real sandboxed processes with ``bwrap`` (Debian ``bubblewrap``, installed by
``make install``) from a runner running as root (it gives each sandbox its own uid); without
either they fail under ``--need-servers`` and skip otherwise.
"""

import glob
import os
import shutil
from pathlib import Path

import pytest

from brokerapp.runtime.userfilter.process import AlertItem
from brokerapp.wire.codecs import InlineCodec

ROOT = Path(__file__).resolve().parents[2]
ZTF = sorted(glob.glob(str(ROOT / "tests" / "data" / "ztf" / "*.avro")))
HOSTILE = Path(__file__).resolve().parent / "filters"
EXAMPLES = ROOT / "examples" / "userfilters"


@pytest.fixture(autouse=True)
def need_bwrap(request):
    message = None
    if shutil.which("bwrap") is None:
        message = "bubblewrap (bwrap) is not installed: make install installs it"
    elif os.geteuid() != 0:
        message = "the sandbox runner runs as root (it gives each sandbox its own uid)"
    if message is None:
        return
    if request.config.getoption("--need-servers"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ztf_items():
    """The 18 ZTF sample alerts as runner items: decoded record, bare body and schema."""
    codec = InlineCodec()
    items = []
    for offset, path in enumerate(ZTF):
        data = Path(path).read_bytes()
        schema, bodies = codec.record_bodies(data)
        items.append(
            AlertItem(
                topic="samples",
                partition=0,
                offset=offset,
                record=codec.decode_one(data),
                body=bodies[0],
                schema_id=1,
                schema=schema.raw,
            )
        )
    return items


# Read from the files by hand: the ZTF samples with candidate.magpsf < 18.
BRIGHT_18 = {
    "ZTF17aaacxxf",
    "ZTF17aabuxmy",
    "ZTF18acsbuxe",
    "ZTF18acsbuxd",
    "ZTF18acsbuxf",
    "ZTF18abomhfb",
}
