# Prism. Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
PY := .venv/bin/python

.PHONY: setup demo test ui lock clean

setup:            ## system packages (apt) + the cached .venv, keyed by requirements.lock
	bash .ci/setup.sh

demo: setup       ## deliver sample titles, run the sensor and every asset, print a summary
	.venv/bin/prism demo

test: setup       ## the whole test suite (needs MariaDB on 127.0.0.1:3306; setup starts it)
	.venv/bin/python -m pytest -q -ra

ui: setup         ## the Dagster UI on http://127.0.0.1:3000 (lineage: Assets > Global asset lineage)
	mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lock:             ## re-resolve requirements.lock from requirements.in
	$(HOME)/.cache/prism/uv-0.13.8/bin/uv pip compile requirements.in --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf .prism .dagster_home
