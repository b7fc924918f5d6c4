# syntax=docker/dockerfile:1.7
# Slim image for dagster-webserver and dagster-daemon: no torch, no Prism dependencies. They reach the
# code location over gRPC (deploy/workspace.yaml) and launch runs through the instance's run launcher.
# The Prism wheel is installed without its dependencies for one module: the instance storage that
# dagster.yaml names (prism_assets.core.pg_storage: dagster-postgres with pooled connections), which
# imports nothing but dagster-postgres.
#
# Build from the repository root:  docker build -f deploy/images/dagster.Dockerfile -t prism-dagster:<git sha> .
# Entry points:
#   webserver  dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/workspace.yaml   (CMD)
#   daemon     dagster-daemon run -w /opt/dagster/workspace.yaml
# Versions: deploy/images/requirements-dagster.txt, constrained by requirements.lock (same dagster
# as the code location, every transitive dependency pinned). No secrets baked in.

FROM python:3.11.7-slim-bookworm AS build
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /build
COPY requirements.lock ./
RUN uv pip install --system --no-cache setuptools -c requirements.lock
COPY pyproject.toml README.md ./
COPY prism_assets ./prism_assets
# the same wheel as the code image (and CI's end-to-end flow)
RUN python -c "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))" /dist

FROM python:3.11.7-slim-bookworm
RUN pip install --no-cache-dir uv==0.13.8 \
 && groupadd --gid 10001 dagster \
 && useradd --uid 10001 --gid dagster --create-home --home-dir /home/dagster --shell /usr/sbin/nologin dagster \
 && mkdir -p /opt/dagster/dagster_home /opt/dagster/ecs_home \
 && chown -R dagster:dagster /opt/dagster
COPY requirements.lock deploy/images/requirements-dagster.txt /tmp/req/
COPY --from=build /dist /tmp/dist
RUN uv pip install --system --no-cache -r /tmp/req/requirements-dagster.txt -c /tmp/req/requirements.lock \
 && uv pip install --system --no-cache --no-deps /tmp/dist/prism_assets-*.whl \
 && rm -rf /tmp/req /tmp/dist
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/ecs/dagster.ecs.yaml /opt/dagster/ecs_home/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml
ENV PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home
USER 10001:10001
WORKDIR /opt/dagster
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/workspace.yaml"]
