#!/usr/bin/env bash
# The demo: the services are up (make demo starts them). Publish the sample alerts the way the
# surveys do -- ZTF as one Avro container per message, Rubin in Confluent wire format with its
# schema registered upstream (asking for ID 900 as Rubin numbers 9.0) -- into upstream daily
# topics; run the gateway, which mirrors them into the local `alerts` buffer with local schema
# IDs; run the ssfilter branch, which splits the buffer into solar-system and other alerts;
# show each alert arriving in the buffer, both streams, and the status pages (JSON).
set -euo pipefail
PYTHON=${PYTHON:-python3}
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/.."
setting() { $BROKER config | $PYTHON -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PORT=$(setting gateway_web_port)
SS_PORT=$(setting ssfilter_web_port)
ALERTS=$(setting alerts_topic)
SOLAR=$(setting solar_topic)
NONSOLAR=$(setting nonsolar_topic)
LOG=var/log/gateway.log
SS_LOG=var/log/ssfilter.log
mkdir -p var/log

echo "== a clean slate: the local buffer and dead-letter topics are deleted"
$BROKER topics delete "$ALERTS" "$(setting gateway_deadletter_topic)" "$SOLAR" "$NONSOLAR" \
  ssfilter-deadletter
echo "== publishing the sample alerts to upstream daily topics"
$BROKER produce --upstream --daily --replace --no-progress --mode inline -f tests/data/ztf
$BROKER produce --upstream --daily --replace --no-progress --mode confluent --schema-id 900 \
  -f tests/data/lsst

echo "== starting the gateway and the ssfilter branch (logs in var/log)"
$PYTHON -m faust -A agents.gateway worker -l info >"$LOG" 2>&1 &
GATEWAY=$!
SSFILTER=$GATEWAY
stop_workers() {
  kill -TERM "$GATEWAY" "$SSFILTER" 2>/dev/null || true
  wait "$GATEWAY" "$SSFILTER" 2>/dev/null || true
}
trap stop_workers EXIT
wait_for() {  # until a worker's status page says it runs
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$1/$2/status.json" | $PYTHON -c \
      'import json,sys; sys.exit(not json.load(sys.stdin).get("running", True))' && return 0
    kill -0 "$3" 2>/dev/null || { tail -30 "$4"; exit 1; }
    sleep 1
  done
  echo "$2 did not start"; exit 1
}
wait_for "$PORT" gateway "$GATEWAY" "$LOG"  # it creates the buffer topic the branch reads
$PYTHON -m faust -A agents.ssfilter worker -l info >"$SS_LOG" 2>&1 &
SSFILTER=$!
wait_for "$SS_PORT" ssfilter "$SSFILTER" "$SS_LOG"

echo "== alerts arriving in the local buffer (topic alerts, decoded with the local registry)"
$BROKER tail --topic "$ALERTS" --count 68 --idle 90
for _ in $(seq 60); do  # until ssfilter has sent all 68 on
  curl -s "http://127.0.0.1:$SS_PORT/ssfilter/status.json" | $PYTHON -c \
    'import json,sys; sys.exit(sum(json.load(sys.stdin)["sent"].values()) < 68)' && break
  sleep 1
done
echo "== the solar-system split (ssfilter): every alert in exactly one stream, bytes unchanged"
$BROKER tail --topic "$SOLAR" --idle 5
$BROKER tail --topic "$NONSOLAR" --idle 5
echo "== status pages: http://127.0.0.1:$PORT/gateway/ and http://127.0.0.1:$SS_PORT/ssfilter/"
curl -s "http://127.0.0.1:$PORT/gateway/status.json" | $PYTHON -m json.tool
curl -s "http://127.0.0.1:$SS_PORT/ssfilter/status.json" | $PYTHON -m json.tool
$BROKER topics "$ALERTS" "$SOLAR" "$NONSOLAR"
echo "== workers stopped; services left running ('make down' stops them)"
