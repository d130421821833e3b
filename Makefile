# scim-edge: two commands on a fresh machine.
#   make dev    set up, build, migrate local D1, serve on http://127.0.0.1:$(PORT)
#               (SHARDS=3: on DB and two more local D1 databases)
#   make test   set up (Debian's chromium too), lint, unit tests, a short fuzz pass, build,
#               integration tests over `wrangler dev` (the console in headless Chromium among
#               them), the external conformance suite scim2-tester, deploy check
#   make fuzz   the fuzzer for longer (FUZZ_INPUTS, default 10 million)
# Everything comes from the package registries (crates.io, npm); nothing downloads from GitHub.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PORT ?= 8787
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
WORKER_BUILD_VERSION := 0.8.7
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
STATE := .wrangler/state

export PATH := $(CARGO_BIN):$(CURDIR)/node_modules/.bin:$(PATH)
# worker-build downloads wasm-bindgen, wasm-opt and esbuild unless told where they are.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
# wrangler: no telemetry, no request.cf fetch, no update check.
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WRANGLER_UPDATE_CHECK := false

# Every file under src/: the console's page, script and style are compiled in too.
SOURCES := $(shell find src core -type f) Cargo.toml core/Cargo.toml Cargo.lock

# Every host build shares one feature set, so the library is compiled once for all test targets:
# `host-sqlite` gives the tests outside the crate the store's SQLite executor.
FEATURES := --features host-sqlite
FUZZ_INPUTS ?= 10000000
# scim2-tester and the OpenAPI checker (PyPI, pinned with their dependencies) in a git-ignored
# virtual environment.
VENV := .venv
REQUIREMENTS := tests/conformance/requirements.txt tests/openapi/requirements.txt tests/webhooks/requirements.txt

.PHONY: help setup toolchain chromium dev migrate-local migrate-remote build test lint unit fuzz-short fuzz integration conformance deploy-check bench bench-shards profile clean

help:
	@echo "make dev    serve the Worker locally on http://127.0.0.1:$(PORT) (embedded D1/KV)"
	@echo "make test   lint, unit tests, integration tests over wrangler dev, scim2-tester, deploy dry-run"
	@echo "make fuzz   the fuzzer, FUZZ_INPUTS inputs (default 10 million) from a random seed"
	@echo "make bench  benchmarks under Miniflare: beside the floor Worker (local and edge latencies), where a create's CPU goes, group membership, the feed, writes with webhooks subscribed (figures; compare and webhooks check that their writes changed what they name)"
	@echo "make bench-shards  1,000 organisations on 1, 2 and 4 one-writer shards, a move of 10,000 users, and three shards beside one (figures)"
	@echo "make profile  a CPU profile of the Worker's isolate serving one kind of request (PROFILE_ARGS=\"--op post|get|disable --requests N\")"

## Set-up (idempotent; quiet when already done) ---------------------------------------------

setup: toolchain node_modules/.installed

toolchain:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@worker-build --version 2>/dev/null | grep -qF "$(WORKER_BUILD_VERSION)" || \
		cargo install worker-build --version $(WORKER_BUILD_VERSION) --locked
	@grep -qF '"=$(WASM_BINDGEN_VERSION)"' tools/wasm-bindgen/Cargo.toml || { \
		echo "tools/wasm-bindgen pins another wasm-bindgen-cli than Cargo.lock's $(WASM_BINDGEN_VERSION)"; exit 1; }
	@wasm-bindgen --version 2>/dev/null | grep -qF " $(WASM_BINDGEN_VERSION)" || \
		cargo install --path tools/wasm-bindgen --locked

# Debian's Chromium, for the console's browser test (tests/browser, driven by playwright-core
# from the npm registry). Installed as root, as CI runs; otherwise say how.
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "the console's browser test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
		fi; }

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## Build --------------------------------------------------------------------------------------

build: setup build/index.js

# worker-build leaves wasm-bindgen's "names" section in (about 140 KB): strip it after
# wasm-bindgen, which needs the sections a `strip` in the release profile would remove. No
# optimisation pass runs here (worker-build's wasm-opt already did); the features are the ones
# the module uses (enabling all of them makes binaryen write encodings workerd rejects).
WASM_FEATURES := --enable-exception-handling --enable-reference-types --enable-bulk-memory \
	--enable-multivalue --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals

build/index.js: $(SOURCES)
	worker-build --release
	wasm-opt build/index_bg.wasm $(WASM_FEATURES) --strip-debug --strip-producers -o build/index_bg.wasm
	@ls -l build/index_bg.wasm | awk '{print "wasm: " $$5 " bytes"}'
	@gzip -9c build/index_bg.wasm | wc -c | awk '{print "wasm gzip: " $$1 " bytes"}'

## Local development --------------------------------------------------------------------------

.dev.vars:
	cp .dev.vars.example .dev.vars

# SHARDS=N (default 1): DB and SHARD_2 … SHARD_N, each a local D1 database, from a config that
# is wrangler.toml with those bindings added (src/service/shards.rs: a shard is DB or any D1
# binding named SHARD_…). Migrations apply to every shard of the config, one command for all.
SHARDS ?= 1
CONFIG := $(if $(filter-out 1,$(SHARDS)),wrangler.shards-$(SHARDS).toml,wrangler.toml)
SHARD_BINDINGS = $(shell sed -n 's/^binding = "\(DB\|SHARD_[A-Z0-9_]*\)"$$/\1/p' $(CONFIG))

wrangler.shards-%.toml: wrangler.toml
	@{ cat wrangler.toml; for n in $$(seq 2 $*); do \
		printf '\n[[d1_databases]]\nbinding = "SHARD_%s"\ndatabase_name = "scim-edge-shard-%s"\ndatabase_id = "00000000-0000-0000-0000-%012d"\nmigrations_dir = "migrations"\n' $$n $$n $$n; \
	done; } > $@

migrate-local: setup $(CONFIG)
	@for b in $(SHARD_BINDINGS); do CI=true wrangler d1 migrations apply $$b --local --persist-to $(STATE) -c $(CONFIG); done

# Every shard of wrangler.toml (README, Deploy): `make migrate-remote`.
migrate-remote: setup
	@for b in $(SHARD_BINDINGS); do wrangler d1 migrations apply $$b --remote -c $(CONFIG); done

dev: build .dev.vars migrate-local
	@echo
	@echo "scim-edge on http://127.0.0.1:$(PORT)   (tenants: http://<subdomain>.localhost:$(PORT)/api/scim/v2)"
	@echo "admin API:  http://127.0.0.1:$(PORT)/admin/v1   (token: ADMIN_TOKEN in .dev.vars)"
	@echo "create a tenant:"
	@echo "  curl -s -X POST http://127.0.0.1:$(PORT)/admin/v1/tenants -H 'Authorization: Bearer dev-admin-token' -d '{\"subdomain\":\"acme\",\"name\":\"Acme Corp\"}'"
	@echo
	wrangler dev --local --ip 127.0.0.1 --port $(PORT) --persist-to $(STATE) -c $(CONFIG)

## Tests --------------------------------------------------------------------------------------

test: setup chromium lint unit fuzz-short build integration conformance deploy-check

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings

unit:
	cargo test --workspace $(FEATURES) --lib

# tests/fuzz: the saved regressions, then 12,000 generated inputs from a fixed seed (seconds).
fuzz-short:
	cargo test $(FEATURES) --test fuzz

# The same targets, optimised but with overflow checks, from a random seed (printed).
fuzz:
	FUZZ_INPUTS=$(FUZZ_INPUTS) FUZZ_SEED=$${FUZZ_SEED:-random} \
		cargo test --profile fuzz $(FEATURES) --test fuzz

# The harness (tests/integration) starts `wrangler dev` on a free port with a temporary
# --persist-to directory and a config without [build], against the build made above.
# Then every admin response they received is checked against the OpenAPI document
# (tests/openapi/check.py: openapi-spec-validator and openapi-core, from PyPI).
integration: build $(VENV)/.installed
	cargo test $(FEATURES) --test integration
	$(VENV)/bin/python tests/openapi/check.py target/admin-responses.jsonl

$(VENV)/.installed: $(REQUIREMENTS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

# Starts the Worker, creates a tenant and token through the admin API, runs every scim2-tester
# check against the tenant's base URL; fails unless all of them pass.
conformance: build $(VENV)/.installed
	$(VENV)/bin/python tests/conformance/run.py

deploy-check: build
	@out=$$(mktemp -d) && CI=true wrangler deploy --dry-run --outdir $$out >/dev/null && \
		echo "deploy dry-run ok: $$(du -sh $$out | cut -f1) in $$out" && rm -rf $$out

## Benchmarks (report figures; not part of make test) ---------------------------------------

# The floor Worker (bench/floor): built like scim-edge, in its own target directory.
bench/floor/build/index.js: bench/floor/src/lib.rs bench/floor/Cargo.toml bench/floor/Cargo.lock
	cd bench/floor && CARGO_TARGET_DIR=$(CURDIR)/target/floor worker-build --release

# BENCH_SIZES: organisation sizes (default 1,000, 10,000 and 100,000 users).
BENCH_SIZES ?= 1000,10000,100000

bench: build bench/floor/build/index.js
	node bench/compare.mjs --sizes $(BENCH_SIZES) --edge
	node bench/cost.mjs
	node bench/groups.mjs
	node bench/feed.mjs
	node bench/webhooks.mjs

# The scale of sharding by simulation (one writer per database), a move of 10,000 users, and
# the table's operations on a tenant on the third of three shards beside one on DB, paired.
bench-shards: build bench/floor/build/index.js
	node bench/shards.mjs
	node bench/move.mjs
	node bench/compare.mjs --sizes 10000 --rounds 5 --shards 3

# A CPU profile of the Worker's isolate (bench/profile.mjs) on a copy of the build whose wasm keeps
# its function names (target/profile/), e.g. PROFILE_ARGS="--op get --requests 5000". Node 20
# needs a flag for its WebSocket client; Node 22 has it.
PROFILE_ARGS ?= --op post --requests 3000
NODE_WS = $(shell node -e 'process.exit(typeof WebSocket === "undefined" ? 0 : 1)' && echo --experimental-websocket)
profile: build
	worker-build --release -d target/profile
	node $(NODE_WS) bench/profile.mjs --build target/profile $(PROFILE_ARGS)

clean:
	rm -rf build target/wasm32-unknown-unknown .wrangler
