# The two commands of the README:
#   make quickstart   installs into .venv, runs the quick-start DAG end to end against the bundled emulator
#   make test         installs what the tests need, runs ruff, mypy and the whole suite on the newest
#                     Airflow, then a smoke run on the oldest supported Airflow (3.1)
# The fast lane for your own loop (not a set-up command: it expects `make test` to have installed once):
#   make check        ruff, mypy and the tests that need no Airflow processes and take under a few seconds

PYTHON ?= python3
AIRFLOW_NEWEST ?= 3.3.2
AIRFLOW_OLDEST ?= 3.1.8
VENV := .venv
VENV_OLDEST := .venv-airflow31
UV = $(VENV)/bin/uv

.PHONY: quickstart test check lint unit parallel serial serial-local-deployments serial-others smoke wheel-venv benchmarks clean system-packages

# Debian's redis-server for the tests and benchmarks of the shared rate governor, Debian's postgresql for the
# tests and benchmarks on PostgreSQL (throwaway clusters; the package's own cluster is not used), and Debian's
# chromium for the browser test (installed where missing; no browser is ever downloaded by Playwright).
system-packages:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		echo "installing postgresql (Debian package)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server (Debian package)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@command -v chromium >/dev/null || { \
		echo "installing chromium (Debian package)"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
		|| echo "chromium could not be installed: the browser test will be skipped (outside CI)"; }

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip uv

$(VENV)/.installed: pyproject.toml $(UV)
	$(UV) pip install --quiet --python $(VENV)/bin/python "apache-airflow==$(AIRFLOW_NEWEST)" -e ".[test]"
	touch $@

$(VENV_OLDEST)/.installed: pyproject.toml $(UV)
	$(UV) venv --quiet --python $(VENV)/bin/python $(VENV_OLDEST)
	$(UV) pip install --quiet --python $(VENV_OLDEST)/bin/python "apache-airflow==$(AIRFLOW_OLDEST)" -e ".[test]"
	touch $@

quickstart: $(VENV)/.installed
	$(VENV)/bin/python scripts/quickstart.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

PYTEST = $(VENV)/bin/python -m pytest -q -p no:cacheprovider

# Two processes grouped by file; then the timing-sensitive tests (marker serial: real deployments, pace and
# crash timing) in two lanes that each run one thing at a time: the LocalExecutor deployments (the real one,
# then the examples' with the browser) beside the production-shaped deployment and the in-process pace and
# crash tests. A serial run takes about one core (measured: 106% CPU over 15 min alone), so two lanes fit
# on 2 cores; the two LocalExecutor deployments side by side did not (a triggerer took 11.5 s to exit,
# promised: 10, and the browser waited past its timeouts), so they stay in one lane.
LOCAL_DEPLOYMENTS = tests/deployment/test_real_deployment.py tests/deployment/test_approval.py \
	tests/deployment/test_ui.py
unit: parallel serial

parallel: $(VENV)/.installed system-packages
	$(PYTEST) -n 2 --dist loadfile -m "not serial"

serial: $(VENV)/.installed system-packages
	$(MAKE) -j2 --output-sync=target serial-local-deployments serial-others

serial-local-deployments: $(VENV)/.installed system-packages
	$(PYTEST) -m serial $(LOCAL_DEPLOYMENTS)

serial-others: $(VENV)/.installed system-packages
	$(PYTEST) -m serial $(addprefix --ignore=,$(LOCAL_DEPLOYMENTS))

# The production-shaped deployment's virtualenv, the provider installed from its wheel and byte-compiled
# (tests/support/production.py): remade only when the sources changed; the tests make their own otherwise.
wheel-venv: $(VENV)/.installed
	$(VENV)/bin/python -m tests.support.production

# The fast lane: no DAG runs (tests/dags, tests/bulk), nothing slow, serial or deployed.
check: lint
	$(PYTEST) -n 2 --dist loadfile -m "not slow and not serial and not deployment and not ui" \
		--ignore=tests/dags --ignore=tests/bulk --durations=5

smoke: $(VENV_OLDEST)/.installed
	$(VENV_OLDEST)/bin/python -m pytest -q -m smoke

# The oldest Airflow's virtualenv and the wheel's install (mostly I/O) while ruff and mypy run; then the
# tests that are not timing-sensitive beside the smoke run on the oldest Airflow (output kept per target),
# then the serial ones alone.
test:
	$(MAKE) -j3 lint $(VENV_OLDEST)/.installed wheel-venv
	$(MAKE) -j2 --output-sync=target parallel smoke
	$(MAKE) serial

benchmarks: $(VENV)/.installed system-packages
	for script in benchmarks/[!_]*.py; do $(VENV)/bin/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(VENV_OLDEST) .venv-wheel
