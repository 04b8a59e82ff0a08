# ddbsync — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
export PYTHONPATH := layers/ddbsync:.
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup opensearch opensearch-stop demo test unit integration lint typecheck build bench clean

help:
	@echo "make demo        set everything up and run the indexer flow locally (OpenSearch + moto)"
	@echo "make test        lint, type-check and run every test (starts a local OpenSearch)"
	@echo "make unit        unit tests only (no OpenSearch needed)"
	@echo "make bench       benchmarks (see bench/README.md)"
	@echo "make build       sam validate --lint + sam build check"
	@echo "make opensearch-stop   stop the local OpenSearch started by these targets"

setup:
	@$(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore -e '.[dev]'

opensearch:
	@scripts/opensearch.sh start

opensearch-stop:
	@scripts/opensearch.sh stop

demo: setup opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PYTHON) -m ddbsync.cli demo

lint:
	@$(PYTHON) -m ruff check layers functions tests bench

typecheck:
	@$(PYTHON) -m mypy

unit:
	@$(PYTHON) -m pytest tests/unit -q

integration: opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PYTHON) -m pytest tests/integration -q

test: setup lint typecheck opensearch
	@OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PYTHON) -m pytest tests -q

build:
	@sam validate --lint --region eu-west-1
	@scripts/sam-build-check.sh

bench: setup opensearch
	@status=0; for b in bench/decode_throughput.py bench/e2e_indexing.py bench/cold_start.py \
	          bench/backfill_rate.py bench/backfill_memory.py; do \
	  echo "== $$b"; OPENSEARCH_URL="$$(scripts/opensearch.sh url)" $(PYTHON) $$b || status=1; done; \
	  exit $$status  # every bench runs; the exit says whether all targets were met

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
