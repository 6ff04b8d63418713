# pg-cloudevents — build, test and run. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# npm ci runs again only when package-lock.json is newer than this stamp (or node_modules is gone).
# The stamp is npm's own hidden lockfile, which every npm ci/install rewrites.
DEPS_STAMP := node_modules/.package-lock.json
IMAGE ?= pg-cloudevents

.PHONY: help deps build services test test-unit run bench bench-smoke docker clean

help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

deps: $(DEPS_STAMP) ## install node_modules with `npm ci` when missing or older than package-lock.json

$(DEPS_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: deps ## compile TypeScript to dist/ (a clean build, so removed files do not linger)
	rm -rf dist
	npx tsc -p tsconfig.json
	node scripts/copy-assets.js

services: ## start PostgreSQL (wal_level = logical), Redis, RabbitMQ, NATS and Mosquitto if needed; build the Kafka mock
	scripts/ensure-services.sh all
	scripts/ensure-kafka-mock.sh


test: deps build services ## all tests (unit + integration, specs from .mocharc.json) against local services
	npx mocha

test-unit: build ## unit tests only (.mocharc.unit.json); a connection to a service fails them
	npx mocha --config .mocharc.unit.json

run: deps build ## run against DATABASE_URL/K_SINK, or a local demo database printing events to the console (PostgreSQL, else an embedded one)
	scripts/run-demo.sh

bench: build services ## full benchmark (~7 min on 2 cores): bench/results/<date>.json and BENCHMARKS.md
	node dist/bench/main.js

bench-smoke: build services ## every benchmark scenario on a few thousand events (about a minute on an idle machine)
	node dist/bench/main.js --smoke

docker: ## build the container image $(IMAGE) (needs a Docker engine; there is none on the CI machines)
	docker build -t $(IMAGE) .

clean: ## remove dist/, packed tarballs and test output (node_modules stays; rm it to force `npm ci`)
	rm -rf dist .tmp *.tgz
