# Crossings: the two commands are `make run` and `make test`.  See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test test-slow test-all test-cluster test-browser cluster cluster-stop setup venv migrate stop demo lint format clean-data help loadtest loadtest-ws bench bench-closed bench-push capacity

help:
	@echo "make run     - set up everything and serve the app with its Celery worker and beat"
	@echo "make test    - set up everything and run the test suite"
	@echo "make test-slow - the long end-to-end suites: attacks on the crossings, Schemathesis (CI runs it)"
	@echo "make stop    - stop the embedded PostgreSQL and Redis"
	@echo "make demo    - load demo data (users, pings, crossings, stories)"
	@echo "make lint    - ruff and mypy (django-stubs, djangorestframework-stubs)"
	@echo "make test-browser - the admin in a headless Chromium (SCREENSHOTS=1 rewrites docs/screenshots/)"
	@echo "make loadtest USERS=100 DURATION=30 - the LOAD_MODEL mix under Locust (bench/README.md)"
	@echo "make loadtest-ws USERS=10000 RATE=1000 DURATION=60 - WebSocket delivery latency, CPU, memory per socket"
	@echo "make bench-closed - the mix near saturation beside the floor views (CPU ms per request)"
	@echo "make bench-push - after loadtest-ws: the mix with pushed events instead of polling, side by side"
	@echo "make bench   - the whole benchmark suite; rewrites docs/BENCHMARKS.md"
	@echo "make capacity - instances and cost for 100k / 1M users from the measured CPU per request"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@echo "Installing the Python packages into $(VENV) (first run: ~2 min; again when requirements*.txt change)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# PostgreSQL and Redis, migrations, static files (collected only when they changed: .data/static.stamp).
setup: venv
	@$(PY) -m devtools.run setup

migrate: venv
	$(PY) manage.py migrate --no-input

# Demo data: `make run` loads a small demo data set on a fresh database (no users besides
# staff) so that crossings, feeds and statistics show at once; DEMO=0 skips it, DEMO_USERS
# sets its size.  `make demo` adds a data set at any time (see docs/operations.md).
DEMO ?= 1
DEMO_USERS ?= 1000
DEMO_ARGS ?= --users $(DEMO_USERS) --hours 1 --density 0.25

# One progress line per step; the URLs and demo logins once the web server answers (devtools/run.py).
run: venv
	@$(PY) -m devtools.run run --demo-args "$(DEMO_ARGS)" $(if $(filter 0,$(DEMO)),--no-demo,)

test: venv
	$(PY) -m devtools.embedded start
	$(PY) -m pytest -m "not cluster and not browser and not slow" $(PYTEST_ARGS)

# The long end-to-end suites (marker `slow`, ~6 min): the attacks on the crossings through the
# live API (tests/security/test_attacks.py) and Schemathesis against the served schema.
test-slow: venv
	$(PY) -m devtools.embedded start
	$(PY) -m pytest -m "slow and not cluster and not browser" $(PYTEST_ARGS)

test-all: venv
	$(PY) -m devtools.embedded start
	$(PY) -m pytest $(PYTEST_ARGS)

stop: venv
	$(PY) -m devtools.embedded stop
	@BENCH_INSTANCE= $(PY) -m bench.harness.servers stop
	@BENCH_INSTANCE=harness $(PY) -m bench.harness.servers stop

# The scale-out topology on loopback (deploy/cluster/): PostgreSQL primary + 2 replicas,
# Redis Cluster 3+3 + broker, 3 gunicorn behind nginx on :8080, Celery worker + beat.
# nginx comes from the system: `apt-get install -y nginx-light` when missing.
cluster: setup
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { echo "nginx missing: sudo apt-get update && sudo apt-get install -y nginx-light"; exit 1; }
	$(PY) deploy/cluster/cluster.py start

cluster-stop: venv
	$(PY) deploy/cluster/cluster.py stop

# Integration tests against real replicas, a Redis Cluster and nginx (tests/cluster/, ~2 min).
# As root on Debian/Ubuntu (CI), a missing nginx is installed from the system's packages.
test-cluster: venv
	$(PY) -m devtools.embedded start
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; \
	  else echo "nginx missing: sudo apt-get update && sudo apt-get install -y nginx-light"; exit 1; fi; }
	$(PY) -m pytest -m cluster $(PYTEST_ARGS)

# The admin in a real headless Chromium against a live server (tests/browser/, ~1 min):
# Debian's chromium and chromium-driver, installed as root when missing, like nginx above.
# SCREENSHOTS=1 rewrites the screenshots under docs/screenshots/ (docs/admin.md).
test-browser: venv
	$(PY) -m devtools.embedded start
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium missing: sudo apt-get update && sudo apt-get install -y chromium chromium-driver"; exit 1; fi; }
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .

demo: setup
	$(PY) manage.py seed_demo $(DEMO_ARGS)

# Benchmarks (bench/README.md): dedicated PostgreSQL/Redis under .data/bench/, Locust, results
# in bench/results/.  Rate = USERS x 0.101 x SPEEDUP requests/s.  CLUSTER=1 drives nginx of
# the loopback scale-out topology instead (bench/harness/cluster_load.py); URL= a server already running.
USERS ?= 100
DURATION ?= 30
SPEEDUP ?= 2.5
WORKERS ?= 2
SCALE ?= 2000
URL ?=
CLUSTER ?=
SEED ?= 1

loadtest: venv
ifneq ($(CLUSTER),)
	$(PY) -m bench.harness.cluster_load --users $(USERS) --duration $(DURATION) --speedup $(SPEEDUP) --workers $(WORKERS)
else
	$(PY) -m bench.harness.loadtest --users $(USERS) --duration $(DURATION) --speedup $(SPEEDUP) --workers $(WORKERS) \
		$(if $(URL),--url $(URL),) $(if $(filter 0,$(SEED)),--no-seed,)
endif

# WebSocket delivery (bench/scenarios/ws_delivery.py): USERS connected sockets (default 10000),
# RATE events/s (1000), DURATION s (60) on one ASGI process; docs/benchmarks/realtime.md.
loadtest-ws: venv
	$(PY) -m bench.scenarios.ws_delivery --users $(if $(filter command line environment,$(origin USERS)),$(USERS),10000) \
		--rate $(or $(RATE),1000) --duration $(if $(filter command line environment,$(origin DURATION)),$(DURATION),60)

# The load model with events pushed over WebSockets instead of polling (after make loadtest-ws):
# the polling and the push mix side by side; WRITE_DOCS=1 rewrites docs/BENCHMARKS.md's WebSocket block.
bench-push: venv
	$(PY) -m bench.scenarios.ws_push_model --rounds $(ROUNDS) --requests $(REQUESTS) $(if $(FROM_LAST),--from-last,) \
		$(if $(WRITE_DOCS),--write-docs,)

# The mix near saturation (closed loop) beside the floor views, on a seeded data set of SEEDED
# users; median of ROUNDS interleaved rounds; WRITE_DOCS=1 rewrites docs/BENCHMARKS.md's headline.
SEEDED ?= 5000
ROUNDS ?= 3
REQUESTS ?= 3000
CLIENTS ?= 8
CLOSED_WORKERS ?= 4
bench-closed: venv
	$(PY) -m bench.harness.closed_loop --users $(SEEDED) --rounds $(ROUNDS) --requests $(REQUESTS) \
		--clients $(CLIENTS) --workers $(CLOSED_WORKERS) $(if $(filter 0,$(SEED)),--no-seed,) \
		$(if $(WRITE_DOCS),--write-docs,) $(if $(PROFILE),--profile $(PROFILE),)

bench: venv
	$(PY) -m bench.harness.run_all --scale $(SCALE) --users $(USERS) --speedup $(SPEEDUP) --duration $(DURATION)

capacity: venv
	$(PY) -m bench.harness.capacity
