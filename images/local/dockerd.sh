#!/usr/bin/env bash
# Start a Docker daemon if none answers, and wait until it does.
#
#   images/local/dockerd.sh            # prints the pid of the dockerd it started, nothing if one ran
#
# The daemon is detached (its own session, log in $DOCKERD_LOG, default /var/log/carbon-kfp-dockerd.log)
# so it outlives this script: `make images-local` leaves it running for the container tests, and
# .ci/run stops it (by the printed pid) only when this script started it. Needs root to start one.
# Exits 1 with a message naming what is missing when no daemon can be had within 60 s.
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd.sh: no Docker daemon answers and dockerd is not installed (apt-get install -y docker.io)" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "dockerd.sh: no Docker daemon answers; starting dockerd needs root (run as root, or start Docker yourself)" >&2
    exit 1
fi
log=${DOCKERD_LOG:-/var/log/carbon-kfp-dockerd.log}
setsid dockerd >"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
        echo "$pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "dockerd.sh: dockerd exited while starting; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
    sleep 1
done
echo "dockerd.sh: dockerd (pid $pid) did not answer within 60 s; see $log" >&2
exit 1
