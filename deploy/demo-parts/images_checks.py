"""Steps of ``deploy/demo-parts/images.sh`` that are easier in Python than in shell.

``python deploy/demo-parts/images_checks.py settle CUTOUT_PORT LIGHTCURVE_PORT``
    Waits (up to 3 minutes) until both archivers have written something, have no backlog
    and nothing has changed for 5 s, then prints their counts.
``python deploy/demo-parts/images_checks.py files ROOT DATA``
    Lists what is under the archive root by kind, and checks every file: each cutout FITS
    against its alert's stamp (the sample alerts in DATA, read with fastavro), each PNG and
    JPEG opens at the stamp's size, each light curve's FITS table and VOTable have the same
    rows.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import fastavro
import numpy as np
from astropy.io import fits
from astropy.io.votable import parse
from PIL import Image

NAMES = ("cutout-archive", "lightcurve-archive")


def status(name: str, port: str) -> dict:
    """Return a worker's status JSON (empty if it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}/status.json", timeout=5) as r:
            return json.load(r)
    except OSError:
        return {}


def settle(ports: list[str]) -> None:
    """Wait until both archivers have written, have no backlog, and stop changing."""
    last, since = None, time.monotonic()
    for _ in range(180):
        now = [status(n, p) for n, p in zip(NAMES, ports, strict=True)]
        counts = [(s.get("written"), s.get("backlog"), s.get("received")) for s in now]
        done = all((s.get("written") or 0) > 0 and s.get("backlog") == 0 for s in now)
        if counts != last:
            last, since = counts, time.monotonic()
        elif done and time.monotonic() - since > 5:
            for name, s in zip(NAMES, now, strict=True):
                keys = ("received", "written", "bytes", "failures", "backlog")
                print(f"{name:18s}", {k: s.get(k) for k in keys})
            return
        time.sleep(1)
    sys.exit("the archivers did not settle")


def stamps(data: Path) -> dict[str, dict[str, bytes]]:
    """Stamp FITS bytes by alert ID and kind, from the sample alerts' raw fields."""
    out: dict[str, dict[str, bytes]] = {}
    for path in sorted(data.glob("*/*.avro")):
        record = next(fastavro.reader(path.open("rb")))
        alert_id = record.get("candid") or record["diaSource"]["diaSourceId"]
        kinds = {}
        for kind in ("science", "template", "difference"):
            value = record.get(f"cutout{kind.capitalize()}")
            if isinstance(value, dict):
                value = gzip.decompress(value["stampData"])
            if value is not None:
                kinds[kind] = value
        out[str(alert_id)] = kinds
    return out


def files(root: str, data: str) -> None:
    """List and check every file under the root."""
    base = Path(root)
    found = sorted(p for p in base.rglob("*") if p.is_file())
    kinds = Counter(
        (p.relative_to(base).parts[0], p.suffix) for p in found if not p.name.startswith(".")
    )
    for (top, suffix), n in sorted(kinds.items()):
        print(f"{top}/**/*{suffix}: {n}")
    raw = stamps(Path(data))
    checked = 0
    for path in found:
        rel = path.relative_to(base).parts
        if rel[0] == "cutouts" and path.suffix == ".fits":
            original = fits.open(io.BytesIO(raw[rel[3]][path.stem]))[0].data
            np.testing.assert_array_equal(fits.open(path)[0].data, original)
            for ext in ("png", "jpg"):
                picture = Image.open(path.with_suffix(f".{ext}"))
                assert picture.size == original.shape[::-1], path
            checked += 1
        elif rel[0] == "lightcurves" and path.suffix == ".fits":
            table = fits.open(path)["LIGHTCURVE"].data
            vot = parse(str(path.with_suffix(".vot"))).get_first_table().to_table()
            assert list(table["candidate_id"]) == list(vot["candidate_id"]), path
            checked += 1
    example = next((p for p in found if p.suffix == ".png"), None)
    print(f"{checked} stamps and light curves checked against their alerts; e.g. {example}")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "settle":
        settle(args)
    elif command == "files":
        files(*args)
    else:
        sys.exit(f"unknown step {command!r}")
