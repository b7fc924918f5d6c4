# Prism. Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
PY := .venv/bin/python
# two test workers (pytest-xdist) on this 2-core machine kind, a test file per worker at a time (its module fixtures
# made once): the suite waits on processes (dagster dev, the daemon, ffmpeg) half of its time
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -ra --durations=25 -n $(TEST_WORKERS) --dist loadfile

.PHONY: setup demo test test-unit test-integration test-e2e lint docs ui serve lock clean

setup:            ## system packages (apt) + the cached .venv, keyed by requirements.lock
	bash .ci/setup.sh

demo: setup       ## deliver sample titles, run the sensor and every asset, print a summary
	.venv/bin/prism demo

test: setup lint  ## everything: lint, the docs check, then every tier (unit, integration, e2e)
	$(PYTEST)

test-unit: setup  ## the fast tier: no services, no subprocess (under 2 minutes)
	$(PYTEST) -m unit

test-integration: setup  ## real MariaDB / PostgreSQL / RabbitMQ / moto S3, media made by ffmpeg
	$(PYTEST) -m integration

test-e2e: setup   ## the CLI as a process, the webserver, the built wheel
	$(PYTEST) -m e2e

lint:             ## ruff (pyproject.toml) and the generated docs tables against the Definitions
	.venv/bin/ruff check prism_assets prism_assets_tests benchmarks deploy
	$(PY) -m prism_assets.docgen --check

docs:             ## rewrite the generated tables of docs/architecture.md and docs/schema.md
	$(PY) -m prism_assets.docgen --write

ui: setup         ## the Dagster UI on http://127.0.0.1:3000 (lineage: Assets > Global asset lineage)
	mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

serve: setup      ## the API and the title viewer on http://127.0.0.1:8080 (over .prism: the demo's index and artifacts)
	.venv/bin/prism serve --host 127.0.0.1 --port 8080

lock:             ## re-resolve requirements.lock from requirements.in (keeps existing pins)
	$(HOME)/.cache/prism/uv-0.13.8/bin/uv pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf .prism .dagster_home

.PHONY: infra
infra: setup      ## the AWS estate (deploy/infra): synthesize every environment with the pinned cdk CLI (cdk-nag errors fail it), then cfn-lint the templates
	rm -rf deploy/infra/cdk.out
	cd deploy/infra && PATH=$(CURDIR)/.venv/bin:$$PATH JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_CLI_TELEMETRY=true \
		./node_modules/.bin/cdk synth -q --no-notices --no-version-reporting -o cdk.out
	.venv/bin/cfn-lint --ignore-checks W3010 -- deploy/infra/cdk.out/*.template.json
