# ddbsync — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
# The interpreter .venv is created from (3.11+); every target then runs .venv/bin/python.
PYTHON ?= python3
export PYTHON
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PYTHONPATH := layers/ddbsync:local:.
export SAM_CLI_TELEMETRY := 0
# The venv's tools (sam, cfn-lint, pip) and the uv that `make setup` installed come first.
export PATH := $(VENV)/bin:$(CURDIR)/.uv/bin:$(PATH)

.PHONY: help setup lock opensearch opensearch-stop demo test unit integration lint typecheck \
	check-template build bench soak clean

help:
	@echo "make demo        set everything up and run the indexer flow locally (OpenSearch + moto)"
	@echo "make test        lint, type-check, check the template and run every test (starts a local OpenSearch)"
	@echo "make unit        unit tests only (no OpenSearch needed)"
	@echo "make bench       benchmarks (see bench/README.md)"
	@echo "make soak        the model-based property test with many examples (DDBSYNC_SOAK_EXAMPLES, default 2000)"
	@echo "make build       sam validate --lint + sam build check of the layer and functions"
	@echo "make check-template   cfn-lint and checkov on template.yaml"
	@echo "make setup       create/update .venv from uv.lock (PYTHON=... picks the interpreter)"
	@echo "make lock        upgrade every locked version on purpose, then run the tests"
	@echo "make opensearch-stop   stop the local OpenSearch started by these targets"

setup:
	@scripts/setup.sh dev

# Refresh uv.lock on purpose: newest versions within pyproject.toml's bounds, then prove them.
lock:
	@uv="$$(scripts/setup.sh uv)" && "$$uv" lock --upgrade && $(MAKE) --no-print-directory test

opensearch:
	@scripts/opensearch.sh start

opensearch-stop:
	@scripts/opensearch.sh stop

demo: setup opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PY) -m ddbsync.cli demo

lint: setup
	@$(PY) -m ruff check layers local functions tests bench

# mypy --strict on what [tool.mypy] files lists: the package, local/, functions/, tests/, bench/.
typecheck: setup
	@$(PY) -m mypy

# cfn-lint, then checkov (its own environment: it pins boto3). Any failed check that the
# template does not skip with a reason fails the target.
check-template: setup
	@scripts/setup.sh checkov
	@$(VENV)/bin/cfn-lint template.yaml
	@$(CURDIR)/.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact \
	  --skip-download  # no calls to Prisma Cloud: local checks and the template's skips only

unit: setup
	@$(PY) -m pytest tests/unit -q

integration: setup opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PY) -m pytest tests/integration -q

test: setup lint typecheck check-template opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PY) -m pytest tests -q

# The promise under failures, at length: the same property test as `make test`, many more examples.
soak: setup opensearch
	@echo "soak: one line per passing example in .soak-progress"; rm -f .soak-progress
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" DDBSYNC_SOAK_EXAMPLES="$${DDBSYNC_SOAK_EXAMPLES:-2000}" \
	  DDBSYNC_SOAK_PROGRESS="$(CURDIR)/.soak-progress" \
	  $(PY) -m pytest tests/integration/test_promise_property.py -q -p no:logging --hypothesis-show-statistics

build: setup
	@sam validate --lint --region eu-west-1
	@scripts/sam-build-check.sh

bench: setup opensearch
	@status=0; for b in bench/decode_throughput.py bench/handler_cpu.py bench/e2e_indexing.py bench/peer.py \
	          bench/cold_start.py bench/backfill_rate.py bench/backfill_memory.py \
	          bench/archiver_rate.py; do \
	  echo "== $$b"; OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PY) $$b || status=1; done; \
	  exit $$status  # every bench runs; the exit says whether all targets were met

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
