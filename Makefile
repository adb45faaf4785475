# Two commands do all the setup on a fresh machine:
#   make demo   - the tutorial's two programs on mnist-5k (offline), figures and metrics in runs/demo/
#   make test   - the test suite
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint fidelity clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[mnist5k,tables,test,explore]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/aekit reproduce all --dataset mnist-5k --out runs/demo
	$(VENV)/bin/aekit reproduce stacked --dataset mnist-5k --preset modern --out runs/demo/modern
	$(VENV)/bin/aekit compare runs/demo/stacked runs/demo/modern/stacked --names tutorial,modern -o runs/demo/compare.png

# Everything: lint, then every test (the slow ones run subprocesses, a browser, torchrun and benchmarks).
test: lint
	$(PY) -m pytest --durations=15 -rfEx

# The fast set (no subprocess, browser, torchrun or benchmark), for the edit-test loop.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" --durations=10

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

# The tutorial's programs on full Fashion-MNIST (apt-get install dataset-fashion-mnist); ~5 min on 2 cores.
fidelity: $(STAMP)
	$(VENV)/bin/aekit reproduce all --dataset fashion-mnist --out runs/fidelity --no-progress

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
