# `make test` and `make run` bootstrap .venv themselves on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-unit lint bench bench-broker bench-audio clean venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-broker: $(STAMP)
	$(BIN)/python bench/broker.py

bench-audio: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	command -v ffmpeg >/dev/null || (apt-get install -y -q ffmpeg >/dev/null)
	$(BIN)/python bench/audio.py

bench: bench-broker bench-audio

clean:
	rm -rf $(VENV) var .pytest_cache build *.egg-info
