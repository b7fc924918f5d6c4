# syntax=docker/dockerfile:1.7
# Prism code location image (CUDA-capable): gRPC code server, run workers, Celery gpu/cpu workers,
# ECS step tasks. torch 2.8 from requirements.lock ships its CUDA 12 runtime libraries as wheels
# (nvidia-*-cu12), so a slim Python base plus the host's NVIDIA driver (NVIDIA container runtime /
# ECS GPU-optimized AMI) is all a GPU node needs; the same image runs CPU-only.
#
# Build from the repository root:  docker build -f deploy/images/code.Dockerfile -t prism-code:<git sha> .
# Entry points (CMD is the code server):
#   code server  dagster code-server start -h 0.0.0.0 -p 4000 -m prism_assets.definitions -a defs --location-name prism
#   run worker   started by the run launcher: dagster api execute_run ...   (EcsRunLauncher / DefaultRunLauncher)
#   step task    started by the ecs_executor: dagster api execute_step ...
#   celery       celery -A dagster_celery.app worker -Q gpu --pool solo -n prism-gpu@%h   (or -Q cpu)
# No secret is baked in: credentials arrive as environment variables from the orchestrator
# (ECS task definition `secrets` from Secrets Manager, compose .env), model weights from a mounted
# volume or the prod profile's configured source (HF_HOME=/models/hf).

FROM python:3.11.7-slim-bookworm AS build
# tesserocr is built from source against Debian's libtesseract (the runtime stage's tesseract-ocr brings the library):
# the PyPI wheel bundles another libtesseract that reads Japanese worse (requirements.in)
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ pkg-config libtesseract-dev libleptonica-dev \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /build
COPY requirements.lock ./
RUN uv venv /opt/venv --python /usr/local/bin/python3.11 \
 && uv pip sync --python /opt/venv/bin/python --no-cache --no-binary tesserocr requirements.lock
COPY pyproject.toml README.md ./
COPY prism_assets ./prism_assets
# the wheel CI tests end to end (prism_assets_tests/support/wheel.py builds it with the same command),
# installed non-editable without dependencies (they are exactly the lock, above)
RUN /opt/venv/bin/python -c "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))" /dist \
 && uv pip install --python /opt/venv/bin/python --no-cache --no-deps /dist/prism_assets-*.whl

FROM python:3.11.7-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng fonts-dejavu-core tini \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-jpn libchromaprint-tools \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 prism \
 && useradd --uid 10001 --gid prism --create-home --home-dir /home/prism --shell /usr/sbin/nologin prism \
 && mkdir -p /opt/dagster/dagster_home /opt/dagster/ecs_home /opt/prism/celery /scratch /models \
 && chown -R prism:prism /opt/dagster /scratch /models
COPY --from=build /opt/venv /opt/venv
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/ecs/dagster.ecs.yaml /opt/dagster/ecs_home/dagster.yaml
COPY deploy/images/dagster_celery_config.py /opt/prism/celery/dagster_celery_config.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/prism/celery \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PRISM_PROFILE=prod \
    PRISM_DATA_DIR=/scratch \
    HF_HOME=/models/hf \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /home/prism
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s \
  CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
ENTRYPOINT ["tini", "--"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "prism_assets.definitions", "-a", "defs", "--location-name", "prism"]
