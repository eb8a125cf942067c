# The two commands: `make up` runs innsync, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test install lint bench soak browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/innsync up

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy channels flows deployments innsync db tasks api

bench: $(STAMP)
	for b in bench/*.py; do case $$b in */soak.py|*/support.py) continue;; esac; echo "== $$b"; $(BIN)/python $$b || exit 1; done

soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $${MINUTES:-60}

# Chromium for tests/api/test_docs_browser.py (/docs and /redoc rendered offline); Debian's.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
