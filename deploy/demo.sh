#!/usr/bin/env bash
# The demo: the services are up (make demo starts them). Publish the sample alerts the way the
# surveys do -- ZTF as one Avro container per message, Rubin in Confluent wire format with its
# schema registered upstream (asking for ID 900 as Rubin numbers 9.0) -- into upstream daily
# topics; run the gateway, which mirrors them into the local `alerts` buffer with local schema
# IDs; show each alert arriving there, then the gateway's status page (JSON).
set -euo pipefail
PYTHON=${PYTHON:-python3}
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/.."
setting() { $BROKER config | $PYTHON -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PORT=$(setting gateway_web_port)
ALERTS=$(setting alerts_topic)
LOG=var/log/gateway.log
mkdir -p var/log

echo "== a clean slate: the local buffer and dead-letter topics are deleted"
$BROKER topics delete "$ALERTS" "$(setting gateway_deadletter_topic)"
echo "== publishing the sample alerts to upstream daily topics"
$BROKER produce --upstream --daily --replace --no-progress --mode inline -f tests/data/ztf
$BROKER produce --upstream --daily --replace --no-progress --mode confluent --schema-id 900 \
  -f tests/data/lsst

echo "== starting the gateway (faust -A agents.gateway worker, log in $LOG)"
$PYTHON -m faust -A agents.gateway worker -l info >"$LOG" 2>&1 &
GATEWAY=$!
stop_gateway() { kill -TERM "$GATEWAY" 2>/dev/null && wait "$GATEWAY" 2>/dev/null || true; }
trap stop_gateway EXIT
for _ in $(seq 120); do  # the status page answers once the mirror runs and its topics exist
  curl -sf "http://127.0.0.1:$PORT/gateway/status.json" >/dev/null && break
  kill -0 "$GATEWAY" 2>/dev/null || { tail -30 "$LOG"; exit 1; }
  sleep 1
done

echo "== alerts arriving in the local buffer (topic alerts, decoded with the local registry)"
$BROKER tail --topic "$ALERTS" --count 68 --idle 90
echo "== the gateway's status page: http://127.0.0.1:$PORT/gateway/ (JSON below)"
sleep 1
curl -s "http://127.0.0.1:$PORT/gateway/status.json" | $PYTHON -m json.tool
$BROKER topics "$ALERTS"
echo "== gateway stopped; services left running ('make down' stops them)"
