#!/usr/bin/env bash
# Demo part: notifications. With the services up (make demo starts them): publish the sample
# alerts to a demo topic; run the watchlist worker with the committed sample watchlist
# (tests/data/watchlists/watchlist.csv) and the crossmatch with that file as its catalogue;
# run the three notifiers (voevent, email, webhooks), a Comet VTP subscriber (twistd comet)
# and an aiosmtpd SMTP server; then list the VOEvents Comet received and the emails the SMTP
# server received. Every name is the demo's own (topics notify-demo-*, app prefix notifydemo),
# so it runs beside the rest of the demo. Logs and received files in var/demo/notify.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
BROKER="$PYTHON -m brokerapp"
cd "$(dirname "$0")/../.."
OUT=var/demo/notify
rm -rf "$OUT" && mkdir -p "$OUT/events" "$OUT/eventdb" "$OUT/state"
export BROKER_APP_PREFIX=notifydemo
export BROKER_WATCHLIST_SOURCE_TOPIC=notify-demo-alerts
export BROKER_ANNOTATED_ALERTS_TOPIC=notify-demo-annotated-alerts
export BROKER_ANNOTATIONS_TOPIC=notify-demo-annotations
export BROKER_VOEVENTS_TOPIC=notify-demo-voevents
export BROKER_NOTIFY_STATE_DIR="$OUT/state"
export BROKER_NOTIFY_SUBSCRIPTIONS="$OUT/subscriptions.toml"
export BROKER_CROSSMATCH_CHAIN="$OUT/crossmatch.toml"
export BROKER_EMAIL_DIGEST_SECONDS=${BROKER_EMAIL_DIGEST_SECONDS:-15}
export BROKER_EMAIL_RATE_LIMIT=${BROKER_EMAIL_RATE_LIMIT:-2}
export BROKER_EMAIL_UNSUBSCRIBE_SECRET=demo-only-secret
setting() { $BROKER config | $PYTHON -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
VTP_PORT=$(setting vtp_port)
SMTP_PORT=$(setting smtp_port)
PORTS=("$(setting voevent_web_port)" "$(setting email_web_port)" "$(setting webhooks_web_port)")
WL_PORT=$(setting watchlist_web_port)
XM_PORT=$(setting crossmatch_web_port)

cat >"$OUT/subscriptions.toml" <<TOML
[[email]]
id = "demo-alerts"
to = "observer@example.org"
watchlists = ["demo-notify"]
sources = ["catalogue:watchlist"]

[[email]]
id = "demo-digest"
to = "digest@example.org"
watchlists = ["demo-notify"]
digest_only = true
TOML
cat >"$OUT/crossmatch.toml" <<TOML
name = "crossmatch"
[[processor]]
use = "catalogue_match"
path = "tests/data/watchlists/watchlist.csv"
id_column = "name"
radius_arcsec = 5.0
[[processor]]
use = "emit_annotations"
stream = "annotations"
position = true
TOML

echo "== a clean slate: the demo's topics"
$BROKER topics delete notify-demo-alerts notify-demo-annotated-alerts notify-demo-annotations \
  notify-demo-voevents || true

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

echo "== an SMTP server (aiosmtpd, maildir $OUT/maildir) on 127.0.0.1:$SMTP_PORT"
$PYTHON -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$OUT/maildir" \
  >"$OUT/aiosmtpd.log" 2>&1 &
PIDS+=($!)
echo "== the notifiers: voevent (VTP on 127.0.0.1:$VTP_PORT), email, webhooks"
start_worker voevent voevent "${PORTS[0]}"
start_worker email_notify email "${PORTS[1]}"
start_worker webhooks webhooks "${PORTS[2]}"
echo "== a Comet VTP subscriber (twistd comet) saving what it receives in $OUT/events"
TWISTD="$(cd "$(dirname "$PYTHON")" && pwd)/twistd"  # absolute: it runs from $OUT
(cd "$OUT" && exec "$TWISTD" -n --pidfile= --logfile=comet.log comet \
  --remote="127.0.0.1:$VTP_PORT" --local-ivo=ivo://demo.example.org/comet \
  --save-event --save-event-directory=events --eventdb=eventdb) &
PIDS+=($!)
subscribed=0
for _ in $(seq 30); do
  curl -s "http://127.0.0.1:${PORTS[0]}/voevent/status.json" | $PYTHON -c \
    'import json,sys; sys.exit(json.load(sys.stdin)["vtp"]["subscribers"] < 1)' \
    && subscribed=1 && break
  sleep 1
done
[ "$subscribed" = 1 ] || { echo "Comet did not subscribe:"; tail -20 "$OUT/comet.log"; exit 1; }

echo "== the watchlist worker and the sample watchlist demo-notify; the crossmatch"
start_worker watchlist watchlist "$WL_PORT"
$BROKER watchlist put demo-notify tests/data/watchlists/watchlist.csv --name "demo" --owner demo
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$WL_PORT/watchlist/watchlists/demo-notify" >/dev/null && break
  sleep 1
done
start_worker crossmatch crossmatch "$XM_PORT"

echo "== the sample alerts to notify-demo-alerts"
$BROKER produce --no-progress --mode confluent -t notify-demo-alerts -f tests/data/ztf
$BROKER produce --no-progress --mode confluent -t notify-demo-alerts -f tests/data/lsst
$PYTHON deploy/demo-parts/notify_checks.py settle "${PORTS[@]}"
sleep "$BROKER_EMAIL_DIGEST_SECONDS"  # the digest period ends; the next round sends it
$PYTHON deploy/demo-parts/notify_checks.py settle "${PORTS[@]}"

echo "== VOEvents received by the VTP subscriber (Comet)"
$PYTHON deploy/demo-parts/notify_checks.py voevents "$OUT/events"
echo "== emails received by the SMTP server"
$PYTHON deploy/demo-parts/notify_checks.py mail "$OUT/maildir"
echo "== status pages: http://127.0.0.1:${PORTS[0]}/voevent/ .../email/ .../webhooks/"
