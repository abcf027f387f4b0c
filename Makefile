# browserjobs — every target sets up what it needs (venv with pinned dependencies, Chromium).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup chromium test test-fast lint build deploy demo local bench worker-image clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt pyproject.toml
	@echo "==> creating $(VENV) with pinned dependencies"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP) chromium ## Create the venv and install Chromium (Debian packages) if missing

# chromium: the full browser (the inspector's tests); chromium-headless-shell: the same build's headless
# shell, which the local worker runs, as the worker image's Playwright does.
HEADLESS_SHELL := /usr/lib/chromium/chromium-headless-shell
chromium:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -x $(HEADLESS_SHELL) ]; then \
		echo "==> installing Chromium (Debian packages chromium, chromium-headless-shell)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$$SUDO apt-get install -y -qq chromium chromium-headless-shell >/dev/null; \
	fi

# One pytest process per suite: moto's backends and the local stack's hooks are process-wide, so a suite
# never inherits another's. A suite is a top-level folder of tests/ (the kind of test) with test files
# anywhere below it (tests/unit/<area>/...). Each suite writes JUnit XML; the last line totals them all.
# Suites whose tests stand alone run on parallel workers (pytest-xdist; each worker has its own moto and
# local stack): the state machine tests mostly wait on the workflow's timers, so they take one more worker
# than there are cores. e2e, chaos and browser share one stack whose timing they measure: one process.
SUITES := $(sort $(shell find tests -mindepth 2 -name 'test_*.py' | cut -d/ -f2))

test: setup ## Run every suite (unit, statemachine, container, e2e, cli, browser, chaos at CI size, docs, packaging)
	@rm -rf out/junit; mkdir -p out/junit; failed=""; \
	for suite in $(SUITES); do \
		echo "==> tests/$$suite"; \
		case $$suite in unit|container|cli|docs) workers="-n 2";; statemachine) workers="-n 3";; *) workers="";; esac; \
		$(PY) -m pytest tests/$$suite $$workers --junitxml=out/junit/$$suite.xml; rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "tests/$$suite collected no tests: the suite is broken" >&2; rc=1; fi; \
		[ $$rc -eq 0 ] || failed="$$failed $$suite"; \
	done; \
	$(PY) -c 'import glob, xml.etree.ElementTree as E; s = [E.parse(f).getroot().find("testsuite") for f in glob.glob("out/junit/*.xml")]; t, f, e, k = (sum(int(x.get(a, 0)) for x in s) for a in ("tests", "failures", "errors", "skipped")); print("total: %d passed, %d failed, %d skipped" % (t - f - e - k, f + e, k))'; \
	if [ -n "$$failed" ]; then echo "failed suites:$$failed" >&2; exit 1; fi

test-fast: setup ## Unit tests only (tests/unit: no sockets, no browser; the worker's logic included)
	@$(PY) -m pytest tests/unit

# The scanners' own venv: checkov pins an older boto3 than .venv has. The SAM template is scanned as AWS
# deploys it (translated, with the roles and event rules SAM generates); every scanner must end clean, and
# each suppression carries its reason next to what it suppresses (docs/SECURITY.md lists them all).
SCAN_VENV := .venv-scan
SCAN := $(SCAN_VENV)/bin
SCAN_STAMP := $(SCAN_VENV)/.installed
SCANNED_TEMPLATE := out/scan/template.json
CHECKOV := $(SCAN)/checkov --quiet --compact --skip-download

$(SCAN_STAMP): requirements-scan.txt
	@echo "==> creating $(SCAN_VENV) with the pinned scanners"
	@test -x $(SCAN)/python || $(PYTHON) -m venv $(SCAN_VENV)
	@$(SCAN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
	@$(SCAN)/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	@touch $(SCAN_STAMP)

lint: setup $(SCAN_STAMP) ## cfn-lint (+ serverless rules), sam validate --lint, ruff, mypy, checkov, bandit
	$(SCAN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	sam validate --lint
	ruff check .
	ruff format --check .
	$(PY) -m mypy
	$(PY) .checkov/translate.py template.yaml $(SCANNED_TEMPLATE)
	$(CHECKOV) --framework cloudformation dockerfile --external-checks-dir .checkov/checks \
		-f $(SCANNED_TEMPLATE) -f container/Dockerfile
	$(SCAN)/bandit --quiet --configfile pyproject.toml --recursive functions src

build: setup ## sam build (no Docker: wheels for python3.13 arm64 are fetched by pip)
	sam build

deploy: build ## sam deploy --guided (first time) or with samconfig.toml
	$(PY) -m browserjobs.core.stack_names  # the stack name names the intake bucket: refuse what S3 would refuse
	sam deploy --guided

# The local stack's switches (src/browserjobs/emulator/README.md) come from the environment or the command line (make passes
# both on to the recipe), e.g.
#   make local LOCAL_PARAMETERS="RateBurst=5 MaxConcurrentTasks=2" LOCAL_TASK_START_SECONDS=30
#   make demo LOCAL_FAULTS="runtask.capacity=0.2,ddb.conflict=0.1" LOCAL_FAULTS_SEED=7

demo: setup ## Run the whole pipeline on the local stack with scenarios (LOCAL_PARAMETERS, LOCAL_FAULTS, ...)
	$(PY) -m browserjobs.testing demo

local: setup ## Start the local stack in the foreground, Ctrl-C stops it (LOCAL_PARAMETERS="Key=Value ...")
	$(PY) -m browserjobs.testing serve

bench: setup ## Run the benchmarks and write bench/RESULTS.md
	$(PY) -m bench

worker-image: ## Build and push the worker image to ECR (needs Docker with buildx and AWS credentials)
	container/build-and-push.sh

clean: ## Remove build output and reports
	rm -rf .aws-sam out .pytest_cache
