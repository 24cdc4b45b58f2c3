#!/usr/bin/env bash
# Start the real services (Kafka, registries, MariaDB, Cassandra), run every test tier, and stop
# the services even when tests fail.
# Services this script did not start (already running before it) are left running.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}  # the venv `make install` makes
started_here=0
if ! $PYTHON -m brokerapp services status | grep -q '^registry-upstream .* up '; then
  started_here=1
fi
stop() { [ "$started_here" = 1 ] && $PYTHON -m brokerapp services down || true; }
trap stop EXIT
$PYTHON -m brokerapp services up --upstream --databases

$PYTHON -m pytest -q -p no:cacheprovider --need-servers tests "$@"
