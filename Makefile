# Crossings: the two commands are `make run` and `make test`.  See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-all test-cluster setup venv migrate stop demo lint format clean-data help

help:
	@echo "make run     - set up everything and serve the app with its Celery worker and beat"
	@echo "make test    - set up everything and run the test suite"
	@echo "make stop    - stop the embedded PostgreSQL and Redis"
	@echo "make demo    - load demo data (users, pings, crossings, stories)"
	@echo "make lint    - ruff"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

setup: venv
	$(PY) -m config.embedded start
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0

migrate: venv
	$(PY) manage.py migrate --no-input

run: setup
	$(PY) manage.py ensure_demo_staff
	$(PY) manage.py serve

test: venv
	$(PY) -m config.embedded start
	$(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)

test-all: venv
	$(PY) -m config.embedded start
	$(PY) -m pytest $(PYTEST_ARGS)

stop: venv
	$(PY) -m config.embedded stop

lint: venv
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
