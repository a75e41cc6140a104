# Two commands on a fresh machine with python3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
COMPAT_VERSIONS := 3.0 3.1 3.2
COMPAT_JOBS := $(COMPAT_VERSIONS:%=test-airflow-%)
SWAGGER ?= $(abspath ../shared/powerbi-spec/swagger.json)

.PHONY: install test $(COMPAT_JOBS) test-airflow-compat lint demo bench emulator soak clean dist wheel-check e2e e2e-scale

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP)
	PBI_TASKFLOW_SWAGGER="$${PBI_TASKFLOW_SWAGGER:-$(SWAGGER)}" $(BIN)/python -m pytest $(PYTEST_ARGS)

# Production drills on a distributed Airflow on loopback (CeleryExecutor, Redis, PostgreSQL, two workers, two
# triggerers): docs/deploy.md. Skipped, saying why, where redis-server or PostgreSQL is missing.
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -p no:cacheprovider -m "not scale" $(PYTEST_ARGS)

# The triggerer-at-scale drill alone (200 deferred refresh tasks over two triggerers; about 5 minutes).
e2e-scale: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -p no:cacheprovider -m scale $(PYTEST_ARGS)

# The fault campaign at length: SOAK_SCENARIOS scenarios (default 3000) from SOAK_SEED (default: a random seed,
# printed first so a failure can be replayed with SOAK_SEED=<seed>). CI runs 160 from a fixed seed in `make test`.
SOAK_SCENARIOS ?= 3000
soak: $(STAMP)
	@seed="$(SOAK_SEED)"; [ -n "$$seed" ] || seed="$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"; echo "soak: seed $$seed, $(SOAK_SCENARIOS) scenarios"; \
	PBI_TASKFLOW_SWAGGER="$${PBI_TASKFLOW_SWAGGER:-$(SWAGGER)}" CAMPAIGN_SEED="$$seed" CAMPAIGN_SCENARIOS="$(SOAK_SCENARIOS)" \
	CAMPAIGN_SHRINK=10 CAMPAIGN_SHRINK_SECONDS=1800 $(BIN)/python -m pytest tests/campaign/test_campaign.py -q $(PYTEST_ARGS)

# Compatibility jobs: part of the suite and a scaffolded project's tests on Airflow 3.0, 3.1 and 3.2, each in its own
# virtualenv (.venv-airflow-<version>) from its lock (.ci/airflow-<version>.txt); `make test` runs on Airflow 3.3.
$(COMPAT_JOBS): $(STAMP)
	.ci/airflow-compat $(@:test-airflow-%=%)

test-airflow-compat: $(STAMP)
	.ci/airflow-compat $(COMPAT_VERSIONS)

# The wheel and sdist in dist/, for `pip install ./dist/pbi_taskflow-<version>-py3-none-any.whl` until a release
# is on a package index (README, "Install").
dist: $(STAMP)
	rm -rf dist
	$(BIN)/uv build --quiet --out-dir dist .
	@ls dist

# CI: the built wheel installs into a clean virtualenv and passes a generated project's own tests.
wheel-check: $(STAMP)
	.ci/wheel-check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/pbi-taskflow demo

bench: $(STAMP)
	$(BIN)/python -m bench

emulator: $(STAMP)
	$(BIN)/pbi-taskflow emulator --port 8443

# Refresh the lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile --quiet --python $(BIN)/python pyproject.toml --extra dev -o constraints.txt --no-header --no-annotate

clean:
	rm -rf $(VENV) .venv-airflow-* .pytest_cache .mypy_cache .ruff_cache build dist
