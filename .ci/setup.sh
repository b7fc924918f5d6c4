#!/usr/bin/env bash
# Installs everything Prism needs on a fresh machine of this kind, idempotently:
#  - apt: ffmpeg, espeak-ng (skipped when present)
#  - services: starts MariaDB if it is down (tests talk to the real server)
#  - python: a venv built from requirements.lock with uv, cached under ~/.cache/prism keyed by the
#    lock's hash (a re-run with the same lock reuses it); .venv is a link to it; the project itself
#    is installed editable into it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "== starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mariadb-admin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
fi

PYTHON=${PYTHON:-python3.11}
hash=$(cat requirements.lock | sha256sum | cut -c1-16)
cache=${PRISM_VENV_CACHE:-$HOME/.cache/prism}
venv="$cache/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  echo "== building venv $venv (first run with this lock: a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q uv==0.13.8
  "$venv/bin/uv" pip install --python "$venv/bin/python" -r requirements.lock
  touch "$venv/.complete"
fi
if [ -e .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
ln -sfn "$venv" .venv
.venv/bin/uv pip install --python .venv/bin/python --no-deps -q -e .
echo "== environment ready: $(readlink .venv)"
