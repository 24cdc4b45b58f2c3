"""Run the CLI as ``python -m brokerapp`` (the same as the ``brokerapp`` console script)."""

from brokerapp.tools.cli import main

main()
