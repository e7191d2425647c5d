# Tempora: `make run` to use it, `make test` to test it. See README.md.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
MANAGE := $(BIN)/python manage.py
# Django 6 needs Python 3.12: a python3.12 on PATH, else pyenv's newest 3.12.
PYTHON312 ?= $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.' | tail -n 1) pyenv which python3.12 2>/dev/null)
VENV6  ?= .venv-django6

.PHONY: run test test-django6 lint chaos bench install install-test install-django6 migrate clean constraints

# `make run` installs the runtime (requirements.txt), `make test` adds the test tools
# (requirements-test.txt); each reinstalls only when its file changes.
# constraints.txt pins what those pull in too.
$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt constraints.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -c constraints.txt
	touch $@

# After changing a requirements file: resolve afresh and pin the result.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet -r requirements-test.txt
	{ sed -n '1,3p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

# The second venv, for Django 6 (requirements-django6.txt says why its Django line is filtered out).
$(VENV6)/.installed: requirements.txt requirements-test.txt requirements-django6.txt
	@test -n "$(PYTHON312)" || { echo "Django 6 needs Python 3.12: none found (set PYTHON312=...)" >&2; exit 1; }
	test -x $(VENV6)/bin/python || $(PYTHON312) -m venv $(VENV6)
	$(VENV6)/bin/python -m pip install --quiet --upgrade pip
	grep -hvE '^(Django==|-r )' requirements.txt requirements-test.txt > $(VENV6)/requirements.txt
	$(VENV6)/bin/python -m pip install --quiet -r $(VENV6)/requirements.txt -r requirements-django6.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

install-django6: $(VENV6)/.installed

migrate: install
	$(MANAGE) migrate --noinput

run: migrate
	$(MANAGE) tempora_demo
	$(MANAGE) collectstatic --noinput --verbosity 0
	@echo
	@echo "Tempora is running at http://$(HOST):$(PORT)/  (the admin: http://$(HOST):$(PORT)/admin/, user 'admin')"
	@echo "The web server and the scheduler run side by side. Press Ctrl-C to stop both."
	@echo
	VENV_BIN=$(abspath $(BIN)) TEMPORA_HOST=$(HOST) TEMPORA_PORT=$(PORT) $(BIN)/honcho start -f Procfile

# The linters first: ruff's rules and its formatting, and the import contracts (pyproject.toml)
# that hold the layers.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: install-test lint
	$(BIN)/pytest $(PYTEST_ARGS)

# Django 6 (Python 3.12), beside `make test` on Django 5.2 LTS: the engine and the package.
test-django6: install-django6
	$(VENV6)/bin/pytest tests/engine tests/package $(PYTEST_ARGS)

# The chaos suite alone (tests/chaos, ~3 min): PostgreSQL only, e.g.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/tempora make chaos
# TEMPORA_CHAOS=kill9 (or cut, sigterm, celery) plays one scenario. On SQLite its tests
# are deselected and pytest exits 5 (no tests ran), so this target fails there.
chaos: install-test
	$(BIN)/pytest tests/chaos $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.run all --seconds 30

clean:
	rm -rf $(VENV) $(VENV6) staticfiles .pytest_cache
