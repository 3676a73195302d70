# Two entry points for people: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT := demo-output

.PHONY: install core demo test lint typecheck unit bench campaign mutation clean mosquitto postgresql bids-validator

# Debian's python3 ships without ensurepip; install the venv module when it is missing.
$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "installing python3-venv (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The simulator's core (simulator/core/) compiled with mypyc (simulator/compiled.py): needs a C
# compiler and the Python headers, installed when missing. Rebuilt only when what it is made
# from changes (the core folder and every module of ours it imports).
core: $(STAMP)
	@command -v cc >/dev/null || { echo "installing gcc (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev; }
	@$(BIN)/python -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || { \
	  echo "installing the Python headers (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev; }
	$(BIN)/acudevice-sim build-core

install: $(STAMP) core

# A whole 8-minute nausea-relief session at 20x on the built-in simulator (about 25 s),
# journalled in demo-output/, then its report. ACUDEVICE_HOME keeps the demo's journal apart.
demo: install
	@mkdir -p $(OUT)
	ACUDEVICE_HOME=$(CURDIR)/$(OUT)/home $(BIN)/acudevice run nausea-relief --device 'sim://?speed=20&seed=1'
	ACUDEVICE_HOME=$(CURDIR)/$(OUT)/home $(BIN)/acudevice report last -o $(OUT)/nausea-relief-session.png
	@echo "report written to $(OUT)/nausea-relief-session.png"
	@echo "the demo's journal is in $(OUT)/home; from this directory, see it with:"
	@echo "  ACUDEVICE_HOME=$(CURDIR)/$(OUT)/home $(BIN)/acudevice history"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The MQTT tests run a real Mosquitto broker (Debian packages), and make TLS certificates
# with openssl; install them when missing.
mosquitto:
	@command -v mosquitto >/dev/null && command -v mosquitto_pub >/dev/null && command -v openssl >/dev/null || { \
	  echo "installing mosquitto, mosquitto-clients and openssl (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients openssl; }

# The study centre's tests run a real PostgreSQL (Debian's server: initdb and pg_ctl live in
# /usr/lib/postgresql/<version>/bin, off PATH), started by the test fixture as the postgres user.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v psql >/dev/null && command -v runuser >/dev/null || { \
	  echo "installing postgresql (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client util-linux; }

# The BIDS export is checked by the field's own validator (npm bids-validator 1.x, pinned),
# installed into .tools/ beside the project; Node and npm from Debian when missing.
BIDS_VALIDATOR := .tools/node_modules/.bin/bids-validator
bids-validator: $(BIDS_VALIDATOR)
$(BIDS_VALIDATOR):
	@command -v npm >/dev/null || { echo "installing nodejs and npm (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	mkdir -p .tools
	npm install --prefix .tools --no-audit --no-fund --loglevel=error bids-validator@1.15.0

# The whole suite with the simulator's core compiled (the build `install` makes), then the
# core's own tests (marker `model`) again as pure Python (ACUDEVICE_SIM_PURE=1): the two
# modes must behave alike, and each run fails if it is not in the mode it asked for.
test: lint typecheck mosquitto postgresql bids-validator
	$(BIN)/pytest --sim-mode=compiled
	$(BIN)/pytest --sim-mode=pure -m model

# The full safety campaign: 10,000 seeded sessions under every simulator fault, judged on
# the true plant level; then the link campaign on each transport: 4 bands, 200 links cut
# (about 5 minutes each). docs/simulator.md. `make test` runs a small one of each.
campaign: install
	$(BIN)/acudevice-sim campaign --runs 10000 --seed 0 --png campaign.png
	$(BIN)/acudevice-sim link-campaign --transport ble --bands 4 --disconnects 200 --seed 0
	$(BIN)/acudevice-sim link-campaign --transport pty --bands 4 --disconnects 200 --seed 0
	$(BIN)/acudevice-sim link-campaign --transport tcp --bands 4 --disconnects 200 --seed 0

bench: install mosquitto postgresql
	@for f in bench/*.py; do case $$f in bench/mutation.py) continue;; esac; \
	  echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Plausible safety bugs, one at a time, against the tests that should catch them (about
# 20-40 min): the score and the survivors (docs/safety.md, "Mutation campaign").
mutation: install mosquitto postgresql
	$(BIN)/python bench/mutation.py

clean:
	rm -rf $(VENV) $(OUT) .sim-core .tools .mypy_cache .pytest_cache .ruff_cache
