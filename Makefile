# Countinghouse: `make run` serves the demo, `make test` runs the linters and the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_QUIET := --quiet --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz lint format migrate seed stack clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Countinghouse needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip

$(VENV)/.base-installed: requirements/base.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -r requirements/base.txt
	@touch $@

$(VENV)/.dev-installed: requirements/base.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install $(PIP_QUIET) -r requirements/dev.txt
	@touch $@ $(VENV)/.base-installed

run: export DEBUG = true
run: $(VENV)/.base-installed
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --host $(HOST) --port $(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=billing_project.settings_test
	$(BIN)/pytest $(PYTEST_ARGS)

# Schemathesis over every API operation as Admin, Finance and the portal user, against a freshly seeded gunicorn
# (tests/fuzz/run.py). On PostgreSQL when DATABASE_URL names one (a database `<name>_fuzz` beside it), else SQLite.
fuzz: $(VENV)/.dev-installed
	$(BIN)/python tests/fuzz/run.py

# The production shape on one machine: gunicorn, a Celery worker and beat, against PostgreSQL and Redis.
stack: $(VENV)/.base-installed
	@test -n "$$DATABASE_URL" && test -n "$$REDIS_URL" && test -n "$$SECRET_KEY" || \
		{ echo "make stack needs DATABASE_URL, REDIS_URL and SECRET_KEY (see README, Production)"; exit 1; }
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
