#!/usr/bin/env bash
# Installs everything Prism needs on a fresh machine of this kind, idempotently:
#  - apt: ffmpeg, espeak-ng, fonts-dejavu-core, chromium, tesseract-ocr (+kor, jpn) and its headers (libtesseract-dev,
#    libleptonica-dev: tesserocr is built against them), libchromaprint-tools, fonts-noto-cjk (the browser test drives Debian's chromium
#    by its path; Playwright cannot download browsers here) (each skipped when present)
#  - services: starts MariaDB, PostgreSQL and RabbitMQ if they are down (tests talk to the real servers)
#  - python: .venv built from requirements.lock with uv (pip sync: exactly the lock), rebuilt when
#    the lock's hash changes; uv's wheel cache makes rebuilds fast; the project is installed
#    editable on every run; byte-code compiled ahead (PYTHONDONTWRITEBYTECODE is set here).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)  # drawtext / title overlays in generated test media
command -v chromium >/dev/null || need+=(chromium fonts-liberation)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)  # on-screen text (structure domain)
# tesserocr (in the lock) is built from source against the system libtesseract (see requirements.in): headers + compiler
[ -f /usr/include/tesseract/baseapi.h ] || need+=(libtesseract-dev)
[ -f /usr/include/leptonica/allheaders.h ] || need+=(libleptonica-dev)
command -v g++ >/dev/null || need+=(g++)
command -v pkg-config >/dev/null || need+=(pkg-config)
for l in kor jpn; do [ -f "/usr/share/tesseract-ocr/5/tessdata/$l.traineddata" ] || need+=("tesseract-ocr-$l"); done
command -v fpcalc >/dev/null || need+=(libchromaprint-tools)  # Chromaprint audio fingerprints (season intro/recap)
[ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need+=(fonts-noto-cjk)  # Korean/Japanese text in generated OCR test media
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

# PostgreSQL (production instance config test, local stack) and RabbitMQ (Celery scale-out test)
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "== starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "== starting RabbitMQ"
  rabbitmq-server -detached || true
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi

PYTHON=${PYTHON:-python3.11}
# uv itself lives in a small cached venv; its wheel cache (~/.cache/uv) makes a rebuild of .venv a
# matter of seconds once the wheels were fetched once on this machine.
uvdir="${PRISM_CACHE:-$HOME/.cache/prism}/uv-0.13.8"
if [ ! -x "$uvdir/bin/uv" ]; then
  "$PYTHON" -m venv "$uvdir"
  "$uvdir/bin/pip" install -q uv==0.13.8
fi
UV="$uvdir/bin/uv"
hash=$(sha256sum requirements.lock | cut -c1-16)
if [ -L .venv ]; then rm -f .venv; fi
if [ ! -f ".venv/.lock-$hash" ]; then
  echo "== building .venv from requirements.lock (first time on a machine: several minutes)"
  rm -rf .venv
  "$UV" venv -q --python "$PYTHON" .venv
  "$UV" pip sync -q --python .venv/bin/python --no-binary tesserocr requirements.lock
  touch ".venv/.lock-$hash"
fi
"$UV" pip install -q --python .venv/bin/python --no-deps -e .
# Byte-code: this kind of machine sets PYTHONDONTWRITEBYTECODE=1, so nothing would ever be cached and
# every Python process (each CLI call, each Dagster step subprocess) would compile numpy, pandas and
# dagster from source again (~1 s a process). Compiled once per venv here; the project's own
# files on every run (seconds). Python reads existing .pyc files whatever that variable says.
if [ ! -f ".venv/.pyc-$hash" ]; then
  echo "== compiling the venv's byte-code (once per venv)"
  .venv/bin/python -m compileall -q -j0 .venv/lib/python3.11/site-packages >/dev/null || true
  touch ".venv/.pyc-$hash"
fi
.venv/bin/python -m compileall -q prism_assets benchmarks prism_assets_tests >/dev/null || true
# deploy/infra: the pinned AWS CDK CLI (deploy/infra/package-lock.json) for `make infra` and the
# infra tests; `npm ci` again only when the lock changed (marker in node_modules), quiet.
if command -v npm >/dev/null; then
  cdklock=$(sha256sum deploy/infra/package-lock.json | cut -c1-16)
  if [ ! -f "deploy/infra/node_modules/.lock-$cdklock" ]; then
    echo "== npm ci in deploy/infra (the pinned aws-cdk CLI)"
    (cd deploy/infra && npm ci --no-audit --no-fund --loglevel=error >/dev/null && touch "node_modules/.lock-$cdklock")
  fi
else
  echo "== npm not found: deploy/infra (make infra, prism_assets_tests/test_infra.py) needs node >= 18 and npm" >&2
fi
echo "== environment ready: .venv ($(.venv/bin/python --version))"
