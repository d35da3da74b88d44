# Two commands do everything on a fresh machine:
#   make demo   set up (venv, dependencies, data) and run `i2i-unlearn demo`
#   make test   set up and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup data demo test clean

setup: $(STAMP) data

$(STAMP): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	# The CPU build of torch first (a local wheel on our machines); the project then finds it satisfied.
	$(PY) -m pip install -q torch==2.13.0 || $(PY) -m pip install -q "torch>=2.2"
	# Then the tested versions, pinned with hashes (requirements.lock: Python 3.11 on Linux x86-64; refresh it
	# with `bash scripts/lock.sh`); another Python or machine gets pyproject's version ranges instead.
	if $(PY) -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64")'; \
	then $(PY) -m pip install -q --require-hashes -r requirements.lock && $(PY) -m pip install -q --no-deps -e .; \
	else echo "requirements.lock is for Python 3.11 on x86-64: installing pyproject's version ranges"; \
	     $(PY) -m pip install -q -e ".[test]"; fi
	touch $(STAMP)

data:
	bash scripts/setup-data.sh

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/i2i-unlearn demo --out $(DEMO_OUT)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n auto  # a worker per core (tests/conftest.py gives each one thread)

clean:
	rm -rf $(VENV) runs
