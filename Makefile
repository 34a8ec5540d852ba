# `make demo` and `make test` are the two commands a user needs; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.turnout-installed

.PHONY: install demo test lint typecheck unit bench clean browser ocr lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's dependency list or its pinned versions change.
# constraints.txt holds the exact versions make test passed with, so a new upstream
# release cannot change a build that passed; make lock moves them forward on purpose.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]' -c constraints.txt
	touch $@

# Resolved in a throwaway venv, so a dependency dropped from pyproject.toml leaves the pins.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	{ sed -n 1,2p constraints.txt; .lock-venv/bin/pip freeze --exclude-editable \
		| grep -vi '^turnout'; } > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .lock-venv

install: $(STAMP)

demo: install
	$(BIN)/turnout demo

lint: install
	$(BIN)/ruff check src tests benches scripts
	$(BIN)/ruff format --check src tests benches scripts

typecheck: install
	$(BIN)/mypy

# Debian's Chromium and its driver for the dashboard's browser test; installed only when
# missing (needs root, as on the project's machines and CI).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver; \
	fi

# Tesseract with English and orientation data for OCR of scanned pages; installed only
# when missing (needs root, as on the project's machines and CI).
ocr:
	@if ! tesseract --list-langs 2>/dev/null | grep -qx eng \
		|| ! tesseract --list-langs 2>/dev/null | grep -qx osd; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd; \
	fi

unit: install browser ocr
	$(BIN)/pytest

test: lint typecheck unit

bench: install
	$(BIN)/python benches/startup.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
