# `make test` and `make run` bootstrap .venv themselves on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck check bench bench-broker bench-audio clean venv

# uv installs the same packages as pip from the same index in a third of the time; compiled to
# bytecode at once, as pip does (the processes tests start never write it when
# PYTHONDONTWRITEBYTECODE is set, and would compile numpy and scipy every time).
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.5,<1'
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/phantomchain dev

# The suite mostly waits on servers and worker processes, so it runs in more processes than
# there are cores (pytest-xdist; each has its own Postgres, NATS namespace and databases) and
# in a shuffled order (pytest-randomly: `PYTEST_ARGS=--randomly-seed=N` replays one; the
# seed is printed first). Each checkout tests in a short folder of its own under /tmp (Unix
# socket paths stay short; two checkouts testing at once never share one).
TEST_WORKERS ?= 5
TEST_TMP := /tmp/phantomchain-test-$(shell printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1)
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider --basetemp=$(TEST_TMP) --dist loadgroup

test: $(STAMP)
	$(PYTEST) -n $(TEST_WORKERS) --durations=10 $(PYTEST_ARGS)

# The edit loop: the unit tests (no server, no worker), on both cores.
test-fast: $(STAMP)
	$(PYTEST) -n 2 --durations=5 tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Settings in setup.cfg's [mypy].
typecheck: $(STAMP)
	$(BIN)/mypy app tasks broker audio

# What CI runs (.ci/run).
check: lint typecheck test

bench-broker: $(STAMP)
	$(BIN)/python bench/broker.py

# Needs ffmpeg on the PATH for the peer (Debian: apt-get install ffmpeg).
bench-audio: $(STAMP)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev,bench]'
	$(BIN)/python bench/audio.py

bench: bench-broker bench-audio

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
