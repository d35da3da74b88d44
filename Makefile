# Two commands do everything on a fresh machine:
#   make demo   set up (venv, dependencies, data) and run `i2i-unlearn demo`
#   make test   set up and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup data demo test clean

setup: $(STAMP) data

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# The CPU build of torch first (a local wheel on our machines); the project then finds it satisfied.
	$(PY) -m pip install -q torch==2.13.0 || $(PY) -m pip install -q "torch>=2.2"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

data:
	bash scripts/setup-data.sh

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/i2i-unlearn demo --out $(DEMO_OUT)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
