# `make test` and `make run` bootstrap .venv themselves on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench bench-broker bench-audio clean venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/phantomchain dev

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=10 $(PYTEST_ARGS)

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
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/audio.py

bench: bench-broker bench-audio

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
