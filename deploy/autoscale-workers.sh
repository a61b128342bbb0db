#!/bin/sh
# How many `worker` dynos to run, from the queue time the web process reports: for Procfile
# hosts with no autoscaler of their own (KEDA does this on Kubernetes: deploy/keda/).
#
#   deploy/autoscale-workers.sh CURRENT      prints the number of workers to run now
#
# - one more when the oldest pipeline message has waited over TARGET_WAIT_S
#   (phantomchain_queue_oldest_waiting_seconds): the workers are not keeping up;
# - one fewer when nothing waits and the stages in flight (phantomchain_queue_unsettled_messages)
#   fit on one worker fewer;
# - CURRENT otherwise, and whenever /metrics or NATS cannot be read: never scale blind.
# Always within MIN_WORKERS..MAX_WORKERS. One step per run: run it every 30-60 s.
#
# Settings (environment), with their defaults:
#   METRICS_URL=http://127.0.0.1:9190/metrics   the web process's METRICS_PORT (internal)
#   QUEUE=pipeline  TARGET_WAIT_S=60  MIN_WORKERS=1  MAX_WORKERS=10
#   SLOTS_PER_WORKER=4   messages one worker dyno holds: WORKER_PROCESSES x WORKER_THREADS x 2
#                        (each thread runs one stage and has the next one fetched)
# Needs curl and awk. Tested by tests/unit/deploy/test_autoscale_script.py.
set -eu

current=${1:?usage: autoscale-workers.sh CURRENT_WORKERS}
url=${METRICS_URL:-http://127.0.0.1:9190/metrics}

if ! metrics=$(curl -fsS --max-time 10 "$url" 2>/dev/null); then
    echo "autoscale-workers: cannot read $url; keeping $current" >&2
    echo "$current"
    exit 0
fi

printf '%s\n' "$metrics" | awk \
    -v current="$current" \
    -v queue="${QUEUE:-pipeline}" \
    -v target="${TARGET_WAIT_S:-60}" \
    -v low="${MIN_WORKERS:-1}" \
    -v high="${MAX_WORKERS:-10}" \
    -v slots="${SLOTS_PER_WORKER:-4}" '
    $1 == "phantomchain_nats_up" { up = $2 }
    $1 == "phantomchain_queue_oldest_waiting_seconds{queue=\"" queue "\"}" { age = $2; seen = 1 }
    $1 == "phantomchain_queue_waiting_messages{queue=\"" queue "\"}" { waiting = $2 }
    $1 == "phantomchain_queue_unsettled_messages{queue=\"" queue "\"}" { unsettled = $2 }
    END {
        if (up + 0 != 1 || !seen) {
            print "autoscale-workers: no queue figures in /metrics; keeping " current > "/dev/stderr"
            print current
            exit
        }
        want = current
        if (age + 0 > target + 0) {
            want = current + 1
        } else if (waiting + 0 == 0 && unsettled + 0 <= (current - 1) * slots) {
            want = current - 1
        }
        if (want > high + 0) want = high + 0
        if (want < low + 0) want = low + 0
        print want
    }'
