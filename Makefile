# The two commands: `make run` and `make test`. Everything else is set-up they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app

.PHONY: run test worker migrate install browser translations clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(FLASK) db upgrade

# Serve on 127.0.0.1:5000 with SQLite, the local backend and an in-process worker.
run: migrate
	PORTAL_WORKER=$${PORTAL_WORKER:-inprocess} $(FLASK) run --host 127.0.0.1 --port 5000

worker: migrate
	$(FLASK) portal worker

# Headless Chromium for the browser tests (Debian's package; needs root or sudo).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium; \
	  else echo "Install Chromium (apt-get install chromium) for the browser tests." >&2; exit 1; fi; }

# axe-core for the accessibility tests, pinned in tests/package-lock.json (npm; Debian's when missing).
AXE := tests/node_modules/axe-core/axe.min.js
$(AXE): tests/package.json tests/package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq npm; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq npm; \
	  else echo "Install npm (apt-get install npm) for the accessibility tests." >&2; exit 1; fi; }
	npm ci --prefix tests --no-audit --no-fund
	touch $(AXE)

# The suite runs in one process per core (pytest-xdist), at most 4: each has its own database,
# SMTP sink and DNS server. TEST_WORKERS=0 runs it in this process (for --pdb, say).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)

test: $(STAMP) browser $(AXE)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# After changing texts: extract them and bring the catalogues up to date (new texts come empty,
# never guessed, in portal/translations/<language>/<area>.po); then translate the empty entries.
translations: $(STAMP)
	$(BIN)/python -c "from portal import catalogues; from portal.i18n import LANGUAGES; \
	  [print(code, catalogues.update(code) or 'nothing new') for code in LANGUAGES if code != 'en']"

clean:
	rm -rf $(VENV) .pytest_cache tests/node_modules
