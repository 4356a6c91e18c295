# Everything a fresh machine needs comes from here: `make run` and `make test` install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[standard,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/palfrey docs_src.getting_started.hello_world:app --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check palfrey tests benchmarks docs_src
	$(BIN)/ruff format --check palfrey tests benchmarks docs_src

format: $(STAMP)
	$(BIN)/ruff format palfrey tests benchmarks docs_src
	$(BIN)/ruff check --fix palfrey tests benchmarks docs_src

docs: $(STAMP)
	$(BIN)/python -m palfrey.settings_doc > docs/settings.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
