# The two commands that do everything on a fresh Debian machine with Python 3.11:
#   make run   set up, create a demo vault on first run, serve it on http://127.0.0.1:8000
#   make test  set up with test extras and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := demo-vault
DEMO_PASSPHRASE := correct horse battery staple
HOST := 127.0.0.1
PORT := 8000

NODE_DIR := tests/node

.PHONY: run test lint bench bench-quick clean messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The runtime dependencies come from requirements.lock (exact versions, checked hashes);
# `make run` installs them and pds only, `make test` adds the test extras.
$(VENV)/.installed-run: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The Python client (clients/python, its own package) goes into the same venv: its tests
# drive a real pds serve.
$(VENV)/.installed: requirements.lock pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e clients/python
	touch $@

# Regenerate requirements.lock from pyproject.toml's dependencies (after changing them).
# Pins that still fit are kept; newer releases: make lock ARGS=--upgrade (or
# ARGS='--upgrade-package flask'). The lock's header names LOCK_COMMAND either way.
UV_VERSION := 0.13.10
LOCK_COMMAND := uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
.PHONY: lock
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/$(LOCK_COMMAND) --custom-compile-command '$(LOCK_COMMAND)' --quiet $(ARGS)

# The strict OAuth client the suite drives pds with (openid-client) and axe-core for the
# browser tests' accessibility audit, both pinned by the lockfile.
# Node.js and npm come from Debian when the machine lacks them.
$(NODE_DIR)/node_modules/.package-lock.json: $(NODE_DIR)/package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error

# make run PORT=8123 HOST=::1 serves elsewhere on this machine; pds serve prints the URL.
run: $(VENV)/.installed-run
	@PDS_HOME=$(DEMO_HOME) PDS_PASSPHRASE='$(DEMO_PASSPHRASE)' $(BIN)/pds demo
	@echo "Demo vault: $(DEMO_HOME)   passphrase: $(DEMO_PASSPHRASE)"
	PDS_HOME=$(DEMO_HOME) PDS_PASSPHRASE='$(DEMO_PASSPHRASE)' $(BIN)/pds serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium through Playwright (no browser download).
/usr/bin/chromium:
	apt-get update -qq && apt-get install -y -qq chromium

# The https test runs Debian's Caddy in front of pds. It needs the program only: the
# service the package starts (Caddy's welcome page on port 80) is stopped and disabled.
/usr/bin/caddy:
	apt-get update -qq && apt-get install -y -qq caddy
	-systemctl disable --now caddy 2>/dev/null

# moto's S3 server for the Litestream test, in a venv of its own: botocore requires
# python-dateutil<3, and the lock pins 4 (for icalendar).
MOTO_VENV := .venv-moto
$(MOTO_VENV)/bin/moto_server:
	$(PYTHON) -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet 'moto[server]>=5.1,<6'

# The deploy/ units are checked with systemd's own systemd-analyze (verify, security).
/usr/bin/systemd-analyze:
	apt-get update -qq && apt-get install -y -qq systemd

test: $(VENV)/.installed $(NODE_DIR)/node_modules/.package-lock.json /usr/bin/chromium /usr/bin/caddy /usr/bin/systemd-analyze \
		$(MOTO_VENV)/bin/moto_server
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py

# Every benchmark scaled down (about two minutes), each ratio beside the last full run's in
# docs/benchmarks.md, drops of more than 20% flagged. It compares, it does not certify: it
# never fails (exit 0 unless it crashed), and `make test` does not run it.
bench-quick: $(VENV)/.installed
	$(BIN)/python benchmarks/quick.py

# The web pages' strings for translators: extracted (babel.cfg) into messages.pot, merged
# into each language's messages.po (English, the source language, comes first), and
# compiled into the messages.mo files pds reads. The .pot, .po and .mo files are committed,
# so a checkout and a wheel have them; run this after changing a page's words.
TRANSLATIONS := pds/http/web/translations
messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext --no-location --sort-output \
		--project pds --msgid-bugs-address '' -o $(TRANSLATIONS)/messages.pot .
	test -f $(TRANSLATIONS)/en/LC_MESSAGES/messages.po || \
		$(BIN)/pybabel -q init -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -l en
	$(BIN)/pybabel -q update --no-fuzzy-matching --ignore-obsolete \
		-i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)
	$(BIN)/pybabel -q compile --use-fuzzy -d $(TRANSLATIONS)

clean:
	rm -rf $(VENV) $(MOTO_VENV) build *.egg-info .pytest_cache .hypothesis
