# Plain set-up and run targets.  `make benchmark` and `make test` do everything
# on a fresh machine that has only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# The torch pair that installs on the reference machines (see README).
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1
OUT ?= mvtec_results
PYTEST_ARGS ?=

.PHONY: venv install benchmark summary test examples docs wheel clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PAIR)
	$(PIP) install --quiet -e ".[dev,offline,distributed]"
	touch $(STAMP)

install: $(STAMP)

benchmark: $(STAMP)
	$(VENV)/bin/mvtec-sklearn benchmark --out $(OUT)

summary: $(STAMP)
	$(VENV)/bin/mvtec-sklearn summary --out $(OUT)/summary

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

examples: $(STAMP)
	for script in $(filter-out examples/grid_search.py,$(wildcard examples/*.py)); do \
		MPLBACKEND=Agg $(PY) $$script --quick || exit 1; done
	MPLBACKEND=Agg $(PY) examples/grid_search.py --image-size 32

wheel: $(STAMP)
	$(PY) -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
