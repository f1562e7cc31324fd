# The two commands of the README. Each sets everything up on a fresh machine (a virtual environment in
# .venv with the pinned dependencies), then does its job. Re-running skips the install when
# pyproject.toml has not changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup weights clean-venv

demo: $(STAMP)  ## set up, then run the main job: examples/quickstart.py -> outputs/quickstart.mp4
	$(BIN)/python examples/quickstart.py

test: $(STAMP)  ## set up, then run the test suite
	$(BIN)/python -m pytest -q

setup: $(STAMP)

weights: $(STAMP)  ## train every model of the tiny preset from scratch into weights/tiny (resumable)
	bash pipelines/tiny/train.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
