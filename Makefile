# Two commands for a new user: `make run` and `make test`. Both set up .venv first (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The official PAI-EAS client (eas-prediction) needs protobuf <= 3.20, so the tests run it from its own venv.
EAS_VENV ?= .venv-eas

.PHONY: setup browser run test bench clean

$(STAMP): pyproject.toml uv-overrides.txt
	@echo "setup: creating $(VENV) and installing eais with its test tools ..."
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip uv
	@$(VENV)/bin/uv pip install -q --python $(PY) --override uv-overrides.txt -e '.[cpu,test]'
	@rm -rf $(EAS_VENV) && $(VENV)/bin/uv venv -q --python $(PY) $(EAS_VENV)
	@$(VENV)/bin/uv pip install -q --python $(EAS_VENV)/bin/python 'eas-prediction>=0.36'
	@touch $(STAMP)
	@echo "setup: done"

setup: $(STAMP)

## run: `eais up --demo`: controller, node agent and VM agent on this machine (data in .eais-run/), one
## instance created, attached, used by a Keras model, detached and billed; the cluster stays up until Ctrl-C
run: setup
	@$(VENV)/bin/eais up --demo --data-dir .eais-run

## browser: Debian's Chromium for the console's browser tests (Playwright drives /usr/bin/chromium) and a CJK font
## (region names are Chinese), installed when missing and running as root; otherwise say so (the browser tests then
## fail in CI and are skipped elsewhere)
browser:
	@{ command -v chromium && fc-list :lang=zh family | grep -q . ; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "setup: installing Chromium and a CJK font for the browser tests (Debian's chromium, fonts-wqy-zenhei) ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null \
	      || { echo "setup: apt-get could not install chromium; the browser tests need it"; exit 1; }; \
	  else \
	    echo "setup: Chromium or a CJK font is missing and this is not root: run 'apt-get install -y chromium fonts-wqy-zenhei' as root" \
	         "for the console's browser tests (skipped outside CI until then)"; \
	  fi; }

## test: the whole suite (PostgreSQL too when EAIS_TEST_PG_URL is set; .ci/run sets it); screenshots of the console
## go to test-artefacts/console/
test: setup browser
	@$(VENV)/bin/pytest -q

## bench: the fleet sweep (100 to 4,000 simulated agents against one controller on SQLite and three replicas on
## PostgreSQL when EAIS_BENCH_PG_URL/EAIS_TEST_PG_URL is set: where it breaks and why); signed DescribeEais with
## 10,000 instances stored; then the data plane (TF direct vs through the agents vs local, back-to-back attach
## p50/p99); relay hops (Python vs HAProxy, plain vs TLS; HAProxy rows only where it is installed); 500 churn cycles
## with the daemons' leak slopes; then eais-serve (local CPU vs the attached accelerator unbatched vs batched, first
## request with/without warm-up)
bench: setup
	@$(PY) -m benchmarks.fleet
	@$(PY) -m benchmarks.describe_eais
	@$(PY) -m benchmarks.data_plane
	@$(PY) -m benchmarks.relay_hops
	@$(PY) -m benchmarks.churn --cycles 500
	@$(PY) -m benchmarks.serving

clean:
	rm -rf $(VENV) $(EAS_VENV) .eais-run .pytest_cache .hypothesis
