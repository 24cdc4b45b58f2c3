#!/usr/bin/env bash
# Demo part: the cutout and light-curve archivers. With the services up (make demo starts
# them): publish the sample alerts to a demo buffer topic; run the candidates and objects
# workers on it (for the objects' histories) and the two archivers, writing under
# var/demo/images/archive; then list the files written and check each against its alert.
# Every name is the demo's own (topics images-demo-*, app prefix imagesdemo, web ports 6092
# and 6093 for its candidates and objects workers), so it runs beside the rest of the demo.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/../.."
OUT=var/demo/images
rm -rf "$OUT" && mkdir -p "$OUT/state"
export BROKER_APP_PREFIX=imagesdemo
export BROKER_TOPIC_PREFIX=images-demo-
export BROKER_ALERTS_TOPIC=images-demo-alerts
export BROKER_NONSOLAR_TOPIC=images-demo-alerts   # every alert with an object gets a history
export BROKER_SOLAR_TOPIC=images-demo-solar
export BROKER_CANDIDATES_TOPIC=images-demo-candidates
export BROKER_SS_CANDIDATES_TOPIC=images-demo-ss-candidates
export BROKER_CANDIDATE_OBJECT_UPDATES_TOPIC=images-demo-cou
export BROKER_OBJECTS_TOPIC=images-demo-objects
export BROKER_CUTOUTS_TOPIC=images-demo-cutouts
export BROKER_STATE_DIR="$OUT/state"
export BROKER_ARCHIVE_ROOT="$OUT/archive"
export BROKER_CANDIDATES_WEB_PORT=${BROKER_CANDIDATES_WEB_PORT:-6092}
export BROKER_OBJECTS_WEB_PORT=${BROKER_OBJECTS_WEB_PORT:-6093}
setting() { $BROKER config | $PYTHON -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
PORTS=("$(setting cutout_archive_web_port)" "$(setting lightcurve_archive_web_port)")

echo "== a clean slate: the demo's topics"
$BROKER topics delete images-demo-alerts images-demo-solar images-demo-candidates \
  images-demo-ss-candidates images-demo-cou images-demo-objects images-demo-cutouts \
  imagesdemo-objects-object_history-changelog || true

PIDS=()
stop_all() {
  [ "${#PIDS[@]}" -eq 0 ] && return
  kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
}
trap stop_all EXIT
wait_for() {  # port path pid log
  for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$1/$2/status.json" >/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { tail -30 "$4"; exit 1; }
    sleep 1
  done
  echo "$2 did not start"; exit 1
}
start_worker() {  # module, status path, port
  $PYTHON -m faust -A "agents.$1" worker -l info >"$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  wait_for "$3" "$2" "$!" "$OUT/$1.log"
}

echo "== the sample alerts to images-demo-alerts"
$BROKER produce --no-progress --mode confluent --partitions 4 -t images-demo-alerts \
  -f tests/data/ztf
$BROKER produce --no-progress --mode confluent --partitions 4 -t images-demo-alerts \
  -f tests/data/lsst
echo "== the candidates and objects workers, the cutout and light-curve archivers"
start_worker candidates candidates "$BROKER_CANDIDATES_WEB_PORT"
start_worker objects objects "$BROKER_OBJECTS_WEB_PORT"
start_worker cutout_archive cutout-archive "${PORTS[0]}"
start_worker lightcurve_archive lightcurve-archive "${PORTS[1]}"
$PYTHON deploy/demo-parts/images_checks.py settle "${PORTS[@]}"

echo "== files written under $BROKER_ARCHIVE_ROOT, each read back and checked"
$PYTHON deploy/demo-parts/images_checks.py files "$BROKER_ARCHIVE_ROOT" tests/data
echo "== status pages: http://127.0.0.1:${PORTS[0]}/cutout-archive/ and" \
  "http://127.0.0.1:${PORTS[1]}/lightcurve-archive/"
