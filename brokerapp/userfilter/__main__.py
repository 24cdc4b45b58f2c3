"""``python3 -m brokerapp.userfilter MODULE:ATTRIBUTE``: serve a filter over standard I/O.

The runner starts this inside the sandbox with the filter's code directory on ``sys.path``;
it loads the entry point (:func:`brokerapp.userfilter.load_entry_point`) and serves the line
protocol (:func:`brokerapp.userfilter.run`) until the runner closes the pipe.
"""

from __future__ import annotations

import sys

from brokerapp.userfilter import load_entry_point, run


def main(argv: list[str]) -> int:
    """Run the filter named by ``argv[0]``; return the exit status."""
    if len(argv) != 1:
        print("usage: python3 -m brokerapp.userfilter MODULE:ATTRIBUTE", file=sys.stderr)
        return 2
    return run(load_entry_point(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
