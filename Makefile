# Correnteza: the verbs a user types. Each is a thin wrapper over terraform,
# ansible-playbook and pytest (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# `make run` defaults: users per batch, batches, seed.
N ?= 1000
BATCHES ?= 1
SEED ?= correnteza
export N BATCHES SEED

.PHONY: help up down test lint unit tftest infra e2e faults run query replay archive-replay bench provision deploy

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

up: ## Bring the whole platform up (engine, tools, image, hosts, every service) and start the pipeline
	@scripts/up.sh

down: ## Destroy the hosts and network (PURGE=1 also removes volumes, images and caches)
	@scripts/down.sh

test: ## Everything CI runs: lint, unit, terraform test, then the platform up once for infra + e2e tests
	@scripts/test.sh all

lint: ## ruff, terraform fmt/validate, ansible-lint, yamllint
	@scripts/test.sh lint

unit: ## Unit tests (no hosts)
	@scripts/test.sh unit

tftest: ## terraform test with the docker provider mocked
	@scripts/test.sh tftest

infra: ## testinfra on every host of the running platform
	@scripts/test.sh infra

e2e: ## End-to-end tests through the running platform
	@scripts/test.sh e2e

faults: ## Fault cases on the running platform (hosts killed, processes killed, a faulty source)
	@scripts/test.sh faults

deploy: ## Only `ansible-playbook ansible/site.yml` on the running hosts
	@scripts/up.sh deploy

run: ## Trigger one DAG run (N users, seed SEED) and follow it hop by hop
	@scripts/run.sh

query: ## Counts at every hop and a few rows from Cassandra
	@scripts/query.sh

replay: ## Refill the stream from PostgreSQL after Kafka lost offsets (REPLAY_SEED=... narrows it)
	@scripts/replay.sh

archive-replay: ## Land archived answers again: RUN_ID=<run id> or DATE_FROM/DATE_TO=YYYY-MM-DD (DRY_RUN=1 only checks)
	@scripts/replay.sh archive

bench: ## Benchmarks with ratios and figures
	@scripts/bench.sh
