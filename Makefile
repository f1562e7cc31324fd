# The two commands of the README. Each sets everything up on a fresh machine (a virtual environment in
# .venv with the pinned dependencies), then does its job. Re-running skips the install when
# pyproject.toml has not changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser weights clean-venv

demo: $(STAMP)  ## set up, then run the main job: examples/quickstart.py -> outputs/quickstart.mp4
	$(BIN)/python examples/quickstart.py

test: $(STAMP) browser  ## set up, then run the test suite
	$(BIN)/python -m pytest -q

setup: $(STAMP)

weights: $(STAMP)  ## train every model of the tiny preset from scratch into weights/tiny (resumable)
	bash pipelines/tiny/train.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $(STAMP)

# The Space's browser test (tests/examples/test_spaces_app.py) drives Debian's Chromium through Playwright, since
# Playwright's own browser download is not reachable from CI. Installing it needs apt and root (or sudo without a
# password), about 15 s and 350 MB; where that fails, the test skips, except on CI (CI=true), where it fails.
browser:
	@command -v chromium >/dev/null || { \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  echo "installing chromium (apt) for the browser test"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	} || echo "could not install chromium: the browser test will skip"

clean-venv:
	rm -rf $(VENV)
