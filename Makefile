# The two commands that matter: `make run` (router on the embedded in-memory map, example config)
# and `make test` (every test). Both install what they need first.
.PHONY: install build run test bench bench-decision clean

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

install: node_modules/.package-lock.json

build: install
	npm run build

run: build
	node dist/cli.js serve --config examples/router.yaml

test: install
	npm test

bench-decision: install
	npm run bench:decision

clean:
	rm -rf dist bench-results
