# The two commands a new machine needs: `make demo` and `make test`. `make help` lists the rest.
# Everything runs in the project's own virtual environment, made by `make install` (Debian 12
# and 13 refuse `pip install` into the system interpreter). BASE_PYTHON makes it.
BASE_PYTHON ?= python3
VENV := .venv
PYTHON := $(VENV)/bin/python
BROKER := $(PYTHON) -m brokerapp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install services down demo test unit lint format bench bench-backlog bench-soak \
	bench-parts faults

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: ## Install Java, Maven, MariaDB, Chromium, Prometheus, bubblewrap, the Python package and the Maven-resolved Kafka, Apicurio, Cassandra
	@command -v java >/dev/null && command -v javac >/dev/null && command -v mvn >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null)
	@(command -v mariadbd || command -v mysqld) >/dev/null && command -v mariadb >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq mariadb-server mariadb-client >/dev/null)
	@command -v chromium >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends prometheus >/dev/null)
	@command -v bwrap >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null)
	@$(BASE_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null)
	@test -x $(PYTHON) || $(BASE_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install -q -e '.[dev]'
	$(BROKER) services install

services: install ## Start local and upstream Kafka, schema registries, MariaDB and Cassandra (left running)
	$(BROKER) services up --upstream --databases

down: ## Stop every service
	$(BROKER) services down

demo: services ## The main job: samples upstream -> gateway -> ssfilter -> candidates -> objects -> MariaDB, Cassandra
	PYTHON=$(PYTHON) bash deploy/demo.sh

test: install ## Lint (style, layers, types), then every test tier against real servers started (and stopped) here
	$(MAKE) --no-print-directory lint
	PYTHON=$(PYTHON) bash deploy/test.sh

unit: ## Unit and agent tests only (no servers)
	$(PYTHON) -m pytest -q tests/unit tests/agents

lint: ## Check style, formatting, the layer contracts, types and the alerting rules (no fixes)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PYTHON) -m mypy
	promtool check rules deploy/prometheus/rules.yml

format: ## Rewrite files to the project style
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

bench: services ## The whole chain at 1 and 10 kHz offered: tables and plots in bench/results (nothing asserted)
	$(PYTHON) -m bench.bench_e2e

bench-backlog: services ## The whole chain working off 40000 alerts waiting upstream: time and CPU per alert (bench/results)
	$(PYTHON) -m bench.bench_backlog

bench-soak: services ## The whole chain at 260 alerts/s for an hour: memory growth (MB/h) and worst lag per worker (bench/results)
	$(PYTHON) -m bench.bench_soak

bench-parts: services ## Each component alone: decode, keys, produce, gateway, branches, objects, sinks, zones, watchlist load
	$(PYTHON) -m bench.bench_decode
	$(PYTHON) -m bench.bench_avrokey
	$(PYTHON) -m bench.bench_produce
	$(PYTHON) -m bench.bench_gateway
	$(PYTHON) -m bench.bench_branches
	$(PYTHON) -m bench.bench_objects
	$(PYTHON) -m bench.bench_sinks
	$(PYTHON) -m bench.bench_zones --quick
	$(PYTHON) -m bench.bench_watchlist_load

faults: services ## Fault scenarios (kill -9, broker loss, registry and database outages, mutated input); fails if anything is lost
	$(PYTHON) -m faults
