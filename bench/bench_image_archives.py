"""Cutout and light-curve archive files: CPU per alert or object, bytes per file format.

Prints, for the ZTF and LSST samples of ``tests/data`` (no services needed; asserts
nothing):

1. cutouts: the time to encode one alert's three stamps as FITS, PNG and JPEG
   (:func:`brokerapp.domain.cutout_images.cutout_files`) and to write them atomically under a
   temporary local root (:func:`brokerapp.adapters.archive.files.write_atomic`, fsync
   included), as alerts per second on one core, and the bytes per alert of each format;
2. light curves: the same for one object's FITS table and VOTable
   (:func:`brokerapp.domain.lightcurve_files.light_curve_files`) for histories of 1, 30 and
   100 detections (the sample detections repeated with new IDs and times).

Figures on a shared 2-core machine: compare rows, not absolute values.

    python bench/bench_image_archives.py [--repeat N]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import fastavro

from brokerapp.adapters.archive.files import write_atomic
from brokerapp.domain.cutout_images import cutout_files
from brokerapp.domain.lightcurve_files import light_curve_files
from brokerapp.model.profiles import profile_for

DATA = Path(__file__).parents[1] / "tests" / "data"


def alerts(survey: str) -> list[dict]:
    return [
        next(fastavro.reader(io.BytesIO(p.read_bytes())))
        for p in sorted(DATA.glob(f"{survey}/*.avro"))
    ]


def bench_cutouts(repeat: int, root: str) -> None:
    print("cutouts: per alert (3 stamps -> 9 files)")
    print(
        f"{'survey':8} {'encode ms':>10} {'write ms':>9} {'alerts/s':>9} "
        f"{'fits B':>8} {'png B':>7} {'jpg B':>7}"
    )
    for survey in ("ztf", "lsst"):
        records = alerts(survey)
        encode = write = 0.0
        sizes: dict[str, int] = defaultdict(int)
        n = 0
        for _ in range(repeat):
            for record in records:
                profile = profile_for(record)
                view = profile.view(record)
                started = time.perf_counter()
                night = profile.night(view.mjd)
                files = cutout_files(survey, view.alert_id, night, profile.cutouts(record))
                encoded = time.perf_counter()
                for relpath, data in files.items():
                    write_atomic(root, relpath, data)
                    sizes[relpath.rsplit(".", 1)[1]] += len(data)
                write += time.perf_counter() - encoded
                encode += encoded - started
                n += 1
        per = (encode + write) / n
        print(
            f"{survey:8} {encode / n * 1e3:10.2f} {write / n * 1e3:9.2f} {1 / per:9.1f} "
            f"{sizes['fits'] // n:8d} {sizes['png'] // n:7d} {sizes['jpg'] // n:7d}"
        )


def history(length: int) -> list[dict]:
    out = []
    for i in range(length):
        out.append(
            {
                "candidate_id": 1000 + i,
                "object_id": "ZTF26bench",
                "survey": "ztf",
                "mjd": 61000.0 + 0.37 * i,
                "band": "gri"[i % 3],
                "ra": 150.0 + 1e-5 * i,
                "dec": 2.0,
                "mag": 18.0 + 0.01 * i,
                "mag_err": 0.05,
                "flux": None,
                "flux_err": None,
                "visit_id": 5_000_000 + i,
            }
        )
    return out


def bench_light_curves(repeat: int, root: str) -> None:
    print("light curves: per object (2 files)")
    print(
        f"{'length':>6} {'encode ms':>10} {'write ms':>9} {'objects/s':>9} "
        f"{'fits B':>8} {'vot B':>8}"
    )
    for length in (1, 30, 100):
        h = history(length)
        encode = write = 0.0
        sizes: dict[str, int] = defaultdict(int)
        n = max(repeat * 20, 20)
        for _ in range(n):
            started = time.perf_counter()
            files = light_curve_files(h)
            encoded = time.perf_counter()
            for relpath, data in files.items():
                write_atomic(root, relpath, data)
                sizes[relpath.rsplit(".", 1)[1]] += len(data)
            write += time.perf_counter() - encoded
            encode += encoded - started
        per = (encode + write) / n
        print(
            f"{length:6d} {encode / n * 1e3:10.2f} {write / n * 1e3:9.2f} {1 / per:9.1f} "
            f"{sizes['fits'] // n:8d} {sizes['vot'] // n:8d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="passes over the samples")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        bench_cutouts(args.repeat, root)
        bench_light_curves(args.repeat, root)


if __name__ == "__main__":
    main()
