# The two set-up commands of the README, and a few more. Each creates the virtual
# environment .venv on first use (torch from constraints.txt), so a fresh clone needs
# nothing but Python 3.10+ and make.
#   make lab      open the series in JupyterLab
#   make test     every test: pytest over tests/ and nbval over every notebook (quick mode)
#   make execute  run every notebook headless in full mode and store its outputs
#   make bench    the throughput benchmark (prints one JSON line; BATCH=1024 for another batch size)
#   make quadrants  rerun notebook 7's experiment from scratch, seeds 0 1 2 (rewrites data/quadrants; SEEDS=0 for one)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

BATCH ?= 512
SEEDS ?= 0 1 2

.PHONY: lab test execute bench quadrants env clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[lab,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cvae)" >/dev/null
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: $(STAMP)
	CVAE_QUICK=1 $(PY) -m pytest -v --durations=0

execute: $(STAMP)
	$(PY) -m cvae_utils.notebooks execute

bench: $(STAMP)
	$(PY) benchmarks/bench_mlp_throughput.py --batch-size $(BATCH)

quadrants: $(STAMP)
	$(PY) -m cvae_utils.quadrants run --seeds $(SEEDS)

clean:
	rm -rf $(VENV) data/MNIST
