# syntax=docker/dockerfile:1.7
# Slim image for dagster-webserver and dagster-daemon: no Prism code, no torch. They reach the code
# location over gRPC (deploy/workspace.yaml) and launch runs through the instance's run launcher.
#
# Build from the repository root:  docker build -f deploy/images/dagster.Dockerfile -t prism-dagster:<git sha> .
# Entry points:
#   webserver  dagster-webserver -h 0.0.0.0 -p 3000 -w /opt/dagster/workspace.yaml   (CMD)
#   daemon     dagster-daemon run -w /opt/dagster/workspace.yaml
# Versions: deploy/images/requirements-dagster.txt, constrained by requirements.lock (same dagster
# as the code location, every transitive dependency pinned). No secrets baked in.

FROM python:3.11.7-slim-bookworm
RUN pip install --no-cache-dir uv==0.13.8 \
 && groupadd --gid 10001 dagster \
 && useradd --uid 10001 --gid dagster --create-home --home-dir /home/dagster --shell /usr/sbin/nologin dagster \
 && mkdir -p /opt/dagster/dagster_home /opt/dagster/ecs_home \
 && chown -R dagster:dagster /opt/dagster
COPY requirements.lock deploy/images/requirements-dagster.txt /tmp/req/
RUN uv pip install --system --no-cache -r /tmp/req/requirements-dagster.txt -c /tmp/req/requirements.lock \
 && rm -rf /tmp/req
COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
COPY deploy/ecs/dagster.ecs.yaml /opt/dagster/ecs_home/dagster.yaml
COPY deploy/workspace.yaml /opt/dagster/workspace.yaml
ENV PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home
USER 10001:10001
WORKDIR /opt/dagster
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "/opt/dagster/workspace.yaml"]
