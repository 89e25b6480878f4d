#!/bin/sh
# Installs what the HTTP benchmarks need beyond the Python extras: wrk (Debian/Ubuntu).
set -e
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
fi
command -v taskset >/dev/null 2>&1 || echo "taskset (util-linux) missing: runs will not be pinned"
wrk --version 2>&1 | head -n 1 || true
