# Two entry points that set themselves up on a fresh machine (Python 3.11, no GPU):
#   make demo   - create .venv, install, run the workflow on the embedded demo
#   make test   - create .venv, install, lint, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= 2

.PHONY: venv demo test lint format clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $@

# The plain command: the workflow itself runs one single-threaded model job per core on a
# CPU-only host (one per GPU on a GPU host; rules/common.smk, discoverydiff/jobs.py).
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --cores 1

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

format: $(STAMP)
	$(BIN)/snakefmt .
	$(BIN)/ruff check --fix .

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf resources/demo .snakemake
