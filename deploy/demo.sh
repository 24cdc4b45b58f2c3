#!/usr/bin/env bash
# The demo: the services are up (make demo starts them). Publish the sample alerts the way the
# surveys do -- ZTF as one Avro container per message, Rubin in Confluent wire format with its
# schema registered upstream (asking for ID 900 as Rubin numbers 9.0) -- into upstream daily
# topics; run the gateway, which mirrors them into the local `alerts` buffer with local schema
# IDs; run the ssfilter branch, which splits the buffer into solar-system and other alerts;
# run the candidates and objects workers (per-object history and statistics) and the MariaDB
# and Cassandra sinks; show each stage's output, the status pages (JSON), the tables' row
# counts, and one object's statistics and light curve read back from the databases.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}  # the venv `make install` makes
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/.."
setting() { $BROKER config | $PYTHON -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PORT=$(setting gateway_web_port)
SS_PORT=$(setting ssfilter_web_port)
ALERTS=$(setting alerts_topic)
SOLAR=$(setting solar_topic)
NONSOLAR=$(setting nonsolar_topic)
mkdir -p var/log

echo "== a clean slate: the local buffer and dead-letter topics are deleted"
$BROKER topics delete "$ALERTS" "$(setting gateway_deadletter_topic)" "$SOLAR" "$NONSOLAR" \
  ssfilter-deadletter
echo "== publishing the sample alerts to upstream daily topics"
$BROKER produce --upstream --daily --replace --no-progress --mode inline -f tests/data/ztf
$BROKER produce --upstream --daily --replace --no-progress --mode confluent --schema-id 900 \
  -f tests/data/lsst

echo "== starting the gateway and the ssfilter branch (logs in var/log)"
WORKERS=()
stop_workers() {
  [ "${#WORKERS[@]}" -eq 0 ] && return
  kill -TERM "${WORKERS[@]}" 2>/dev/null || true
  wait "${WORKERS[@]}" 2>/dev/null || true
}
trap stop_workers EXIT
wait_for() {  # until a worker's status page says it runs
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$1/$2/status.json" | $PYTHON -c \
      'import json,sys; sys.exit(not json.load(sys.stdin).get("running", True))' 2>/dev/null \
      && return 0  # (not answering yet: curl prints nothing and json.load fails)
    kill -0 "$3" 2>/dev/null || { tail -30 "$4"; exit 1; }
    sleep 1
  done
  echo "$2 did not start"; exit 1
}
start_worker() {  # module, status path, port
  $PYTHON -m faust -A "agents.$1" worker -l info >"var/log/$1.log" 2>&1 &
  WORKERS+=($!)
  wait_for "$3" "$2" "$!" "var/log/$1.log"
}
start_worker gateway gateway "$PORT"  # it creates the buffer topic the branch reads
start_worker ssfilter ssfilter "$SS_PORT"

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

echo "== the database tables (versioned migrations; running them again changes nothing)"
$BROKER db migrate
$BROKER db migrate
echo "== candidates, objects and the MariaDB and Cassandra sinks"
PORTS=("$(setting candidates_web_port)" "$(setting objects_web_port)" \
  "$(setting mariadb_sink_web_port)" "$(setting cassandra_sink_web_port)")
start_worker candidates candidates "${PORTS[0]}"
start_worker objects objects "${PORTS[1]}"
start_worker mariadb_sink mariadb-sink "${PORTS[2]}"
start_worker cassandra_sink cassandra-sink "${PORTS[3]}"
$PYTHON deploy/demo_checks.py stored 68 "${PORTS[@]}"
$BROKER db status
OBJECT=$($PYTHON deploy/demo_checks.py longest)
mkdir -p var/demo
echo "== the object with the longest light curve, from MariaDB, then from Cassandra"
$BROKER object "$OBJECT" --store mariadb --plot var/demo/lightcurve.png
$BROKER object "$OBJECT" --store cassandra
echo "== light curve plot: var/demo/lightcurve.png"
echo "== notifications: watchlist, crossmatch, VOEvent over VTP, email, webhooks"
PYTHON=$PYTHON bash deploy/demo-parts/notify.sh
echo "== archives: cutout images (FITS, PNG, JPEG) and light curves (FITS table, VOTable)"
PYTHON=$PYTHON bash deploy/demo-parts/images.sh
echo "== workers stopped; services left running ('make down' stops them)"
