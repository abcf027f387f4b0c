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

setup: $(STAMP) chromium ## Create the venv and install Chromium (Debian package) if missing

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "==> installing Chromium (Debian package chromium)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

test: setup ## Run the whole test suite (unit, state machine, worker, e2e, browser, chaos at CI size)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; exit 1; fi; exit $$rc

test-fast: setup ## Unit and template tests only
	@$(PY) -m pytest -m unit

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

lint: setup $(SCAN_STAMP) ## cfn-lint (+ serverless rules), sam validate --lint, ruff, checkov, bandit
	$(SCAN)/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules
	sam validate --lint
	ruff check .
	$(PY) .checkov/translate.py template.yaml $(SCANNED_TEMPLATE)
	$(CHECKOV) --framework cloudformation dockerfile --external-checks-dir .checkov/checks \
		-f $(SCANNED_TEMPLATE) -f container/Dockerfile
	$(SCAN)/bandit --quiet --configfile pyproject.toml --recursive functions container/worker local

build: setup ## sam build (no Docker: wheels for python3.13 arm64 are fetched by pip)
	sam build

deploy: build ## sam deploy --guided (first time) or with samconfig.toml
	sam deploy --guided

demo: setup ## Run the whole pipeline on the embedded local stack with scenarios
	$(PY) -m local demo

local: setup ## Start the embedded local stack in the foreground (Ctrl-C stops it)
	$(PY) -m local serve

bench: setup ## Run the benchmarks and write bench/RESULTS.md
	$(PY) -m bench

worker-image: ## Build and push the worker image to ECR (needs Docker with buildx and AWS credentials)
	container/build-and-push.sh

clean: ## Remove build output and reports
	rm -rf .aws-sam out .pytest_cache
