#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what the tests need, then runs them.
#   bash tests/run.sh [pytest args...]
#   bash tests/run.sh --fast [pytest args...]   the fast tier: pure and in-process tests only (no Synapse,
#       no dockerd, nothing marked slow), no Debian packages needed; what to run before every commit.
# Installs (when missing): Debian packages docker.io, espeak-ng, ffmpeg, busybox-static, sqlite3,
# chromium, nodejs + npm; the hub's venv (.venv) with its dev extras. The real Astro build test
# npm-installs its pinned astro into ~/.cache once (Astro 5 needs Node.js >= 18.20.8). The tests themselves start a real Synapse
# (pip-installed into its own cached venv) and a private dockerd, and stop both at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--fast" ]; then
  shift
  PY=${PYTHON:-python3}
  [ -x .venv/bin/python ] || { "$PY" -m venv .venv && .venv/bin/python -m pip install -q -e ".[dev]"; }
  .venv/bin/ruff check .
  exec .venv/bin/pytest -p no:cacheprovider -q --fast "$@"
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"

.venv/bin/ruff check .
exec .venv/bin/pytest -p no:cacheprovider -q "$@"
