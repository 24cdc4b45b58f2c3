#!/usr/bin/env bash
# The demo: the services are up (make demo starts them); publish the sample alerts the way the
# surveys do -- ZTF as one Avro container per message, Rubin in Confluent wire format with its
# schema registered upstream (asking for ID 900 as Rubin numbers 9.0) -- into upstream daily
# topics, then show each alert arriving, one line per alert, and a summary.
set -euo pipefail
PYTHON=${PYTHON:-python3}
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/.."
echo "== publishing the sample alerts to upstream daily topics"
$BROKER produce --upstream --daily --replace --no-progress --mode inline -f tests/data/ztf
$BROKER produce --upstream --daily --replace --no-progress --mode confluent --schema-id 900 \
  -f tests/data/lsst
echo "== alerts arriving (upstream daily topics)"
$BROKER tail --upstream --pattern '^(ztf_[0-9]{8}_programid1|lsst-alerts-[0-9]{8})$' \
  --count 68 --idle 20
echo "== services left running; 'make down' stops them"
