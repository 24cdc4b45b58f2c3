"""Fill /tmp with 8 MiB files until the file system refuses; report how much it wrote."""

import os

from brokerapp import userfilter


@userfilter.filter()
def fill(alert):
    written = 0
    chunk = b"\0" * (8 * 1024 * 1024)
    try:
        for n in range(10_000):
            with open(f"/tmp/fill-{alert['n']}-{n}", "wb") as handle:
                handle.write(chunk)
            written += len(chunk)
    except OSError as exc:
        return userfilter.Pass(
            {"written": written, "error": exc.strerror, "listing": len(os.listdir("/tmp"))}
        )
    return True
