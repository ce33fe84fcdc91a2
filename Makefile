# fsad: two commands from a fresh clone (Python 3.11 + pip, no network beyond PyPI):
#   make book   set up the environment, run the notebooks, build the HTML book
#   make test   set up the environment, run the test suite
# Real data: export FSAD_DATA=/path/to/data (mvtec_ad/, mvtec_3d/, dtd/); default: embedded set.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fsad-installed
SHOTS  ?= 1 2 3 4 5
CONFIG ?=
# test processes (pytest-xdist, one torch thread each); the row reproductions stay serial
TEST_WORKERS ?= 2

.PHONY: setup test test-rows test-fast book runs lint clean-book help

help:
	@echo "make book   - set up, execute the notebooks, build book/_build/html"
	@echo "make test   - set up, run the tests (real-data tests need FSAD_DATA)"
	@echo "make test-rows - every registered method reproduces a committed row (needs FSAD_DATA)"
	@echo "make runs SHOTS='1 2 3 4 5' [CONFIG=quick] [WORKERS=2 | SCHEDULER=tcp://host:8786] - papermill batch runs per shot count"
	@echo "make lint   - ruff"

setup: $(STAMP)

# Re-installs when pyproject.toml changes; torch first, from pip (see notes in README).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install --quiet -e '.[book,dev]'
	@touch $@

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not rows"

# The committed results, one cell per registered method, query by query (minutes; CI runs it).
test-rows: setup
	@test -n "$$FSAD_DATA" || { echo "make test-rows needs FSAD_DATA (the real images)"; exit 2; }
	$(BIN)/python -m pytest -q -m rows

test-fast: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow and not rows"

book: setup
	$(BIN)/python scripts/build_book.py

# WORKERS=N fans the runs out to a Dask LocalCluster; SCHEDULER=tcp://host:8786 to a cluster
runs: setup
	$(BIN)/python scripts/run_notebooks.py --config "$(CONFIG)" --shots $(SHOTS) \
		--workers $(or $(WORKERS),1) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

lint: setup
	$(BIN)/ruff check .

clean-book:
	rm -rf book/_build book/_executed
