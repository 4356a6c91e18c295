# Everything a fresh machine needs comes from here: `make run` and `make test` install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-tools lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[standard,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/palfrey docs_src.getting_started.hello_world:app --host 127.0.0.1 --port 8000

# Tools the end-to-end tests drive (nginx and HAProxy for the reverse-proxy and deployment-recipe tests,
# curl, systemd's socket-activation launcher and unit verifier, h2load for the HTTP/2 load tests),
# from Debian's packages when missing: a test never skips because a tool is absent.
TEST_TOOLS := nginx:nginx curl:curl haproxy:haproxy systemd-socket-activate:systemd systemd-analyze:systemd
TEST_TOOLS += h2load:nghttp2-client
test-tools:
	@missing=; for pair in $(TEST_TOOLS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get install -y $$missing || { $$sudo apt-get update && $$sudo apt-get install -y $$missing; }; fi

# CI runs this: lint (ruff check, ruff format --check, mypy strict) first, then the whole suite.
test: $(STAMP) test-tools lint
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check palfrey tests benchmarks docs_src
	$(BIN)/ruff format --check palfrey tests benchmarks docs_src
	$(BIN)/mypy

# mypy with the [tool.mypy] settings of pyproject.toml (strict, palfrey/ only).
.PHONY: typecheck
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format palfrey tests benchmarks docs_src
	$(BIN)/ruff check --fix palfrey tests benchmarks docs_src

docs: $(STAMP)
	$(BIN)/python -m palfrey.settings_doc > docs/settings.md
	$(BIN)/python -m palfrey.settings_doc --config-annotations

# --- bench: benchmarks/README.md -------------------------------------------------------------
# Peers (uvicorn, granian, hypercorn, gunicorn, ...) live in their own venv so they never become
# palfrey dependencies; palfrey itself runs from $(VENV). app-libs holds the same Starlette, Django
# and seed-page libraries (brotli, requests, httpx) for palfrey's process. Knobs: BENCH_QUICK=1, BENCH_DURATION, BENCH_ROUNDS,
# BENCH_WARMUP, BENCH_ONLY (scenario names/globs), BENCH_SERVERS (palfrey,uvicorn,...).
PEERS := benchmarks/.venv-peers
PEERS_STAMP := $(PEERS)/.installed-stamp
BENCH_VARS := BENCH_QUICK BENCH_DURATION BENCH_ROUNDS BENCH_WARMUP BENCH_ONLY BENCH_SERVERS BENCH_OUT

$(PEERS_STAMP): benchmarks/requirements-peers.txt
	rm -rf $(PEERS)
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r benchmarks/requirements-peers.txt
	$(PEERS)/bin/python -m pip install --quiet --upgrade --target $(PEERS)/app-libs \
		$$($(PEERS)/bin/python -c 'import importlib.metadata as m; print(*(f"{n}=={m.version(n)}" for n in ("starlette", "django", "brotli", "requests", "httpx")))')
	touch $(PEERS_STAMP)

# Load clients from Debian's packages when missing: wrk (HTTP/1.1), h2load (nghttp2-client, HTTP/2).
BENCH_TOOLS := wrk:wrk h2load:nghttp2-client
bench: $(STAMP) $(PEERS_STAMP)
	@missing=; for pair in $(BENCH_TOOLS); do command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get install -y $$missing || { $$sudo apt-get update && $$sudo apt-get install -y $$missing; }; fi
	$(foreach v,$(BENCH_VARS),$(v)="$($(v))") $(PEERS)/bin/python -m benchmarks.bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
