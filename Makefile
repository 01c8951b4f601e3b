# Two commands set up everything on a fresh Debian machine: `make demo` and `make test`.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTHON  ?= python3
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-fast test-unit lint bench run clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "ivrbot needs Python 3.11 or newer (set PYTHON=python3.11)"; exit 1; }
	@if ! ldconfig -p | grep -q libespeak-ng; then \
	  echo "installing espeak-ng (text to speech) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng >/dev/null; \
	fi
	@if ! command -v dot >/dev/null; then \
	  echo "installing graphviz (flows graph lays pictures out with dot) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq graphviz >/dev/null; \
	fi
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing chromium (the softphone tests drive it headless) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi
	@if [ ! -x /usr/bin/baresip ] || [ ! -x /usr/sbin/kamailio ] || [ ! -x /usr/bin/sipp ] || [ ! -x /usr/bin/openssl ]; then \
	  echo "installing baresip, kamailio, sipp and openssl (the SIP tests' peers, TLS certificates) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq baresip-core kamailio sip-tester openssl >/dev/null; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(BIN)/ivrbot demo

# Every test carries one lane: unit, contract or e2e (README, Tests). The e2e tests mostly
# wait on real-time media, so make test runs all lanes in more workers than cores; tests
# that share fixed ports or a browser carry an xdist_group and run in one worker.
WORKERS ?= 3

test: setup lint  # every lane; then the few tests marked serial, alone
	$(BIN)/pytest -q -n $(WORKERS) --dist loadgroup -m "not serial"
	$(BIN)/pytest -q -m serial

test-fast: setup  # unit + contract: everything but the end-to-end tests
	$(BIN)/pytest -q -m "not e2e"

test-unit: setup  # pure logic and flows on fakes and virtual time
	$(BIN)/pytest -q -m unit

lint: setup
	$(BIN)/ruff check ivrbot tests flows bench
	$(BIN)/ruff format --check ivrbot tests flows bench
	$(BIN)/mypy
	$(BIN)/lint-imports  # the package's boundaries: contracts in pyproject.toml

bench: setup
	$(BIN)/pip install -q -e '.[test,bench]'  # uvloop: bench/rtp.py's second loop
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

run: setup
	$(BIN)/ivrbot run flows

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache *.egg-info
