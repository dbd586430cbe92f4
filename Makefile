# The two set-up commands of the README, and a few more. Each creates the virtual
# environment .venv on first use (torch from constraints.txt), so a fresh clone needs
# nothing but Python 3.10+ and make.
#   make lab      open the series in JupyterLab
#   make test     every test: ruff (lint and format, notebooks included), then pytest over tests/
#                 and nbval over every notebook (quick mode)
#   make lint     ruff alone; make format rewrites the files ruff would change
#   make execute  run every notebook headless in full mode and store its outputs, without progress
#                 bars or solutions' outputs (NB=05 for one, NB="05 06" for some); prints the time each took
#   make bench    the throughput benchmark (prints one JSON line; BATCH=1024 for another batch size)
#   make quadrants  rerun notebook 7's experiment from scratch, seeds 0 1 2 (rewrites data/quadrants; SEEDS=0 for one)
# The lecturer's kit (kit/README.md; outputs go to build/, which git ignores):
#   make book      the series as a static website, from the committed notebooks: build/book/index.html
#                  (STUDENTS=1: without the solution cells, build/book-students/)
#   make handouts  student copies (no solutions) and lecturer copies (answer keys): build/handouts/
#   make grade SUBMISSIONS=folder   grade the assignment notebooks in a folder: one CSV score table in
#                 build/grades/ (OUT=file.csv to choose it, TIMEOUT=seconds per notebook, JOBS=n at once)
#   make slides    one reveal.js slide deck per course session: build/slides/
#   make demo      serve notebook 6's sampler alone, as a page without code, for class (prints the URL;
#                 OPEN=1 opens it in the browser, DEMO_PORT=8866 for a fixed port; Ctrl-C stops it)
# And, not a make target: python tools/colab.py badges  rewrites the notebooks' Colab badges
# from REPOSITORY in tools/colab.py.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

BATCH ?= 512
SEEDS ?= 0 1 2
NB ?=

# make execute: nbconvert runs each notebook top to bottom in a fresh python3 kernel (from the
# notebooks folder) and writes it back as committed: no cell timeout, no per-cell timing metadata,
# no widget state in the notebook metadata (widget views keep their text fallback). nbclient must record
# the widget state while it runs (notebook 6's sampler draws into an Output widget, which fails without it),
# so ClearMetadataPreprocessor drops it afterwards, keeping only kernelspec and language_info. Then
# tools/stored_outputs.py drops the frozen progress bars (each run's one-line summary stays) and the
# outputs of solution cells (the answers), as tests/test_notebooks.py requires of a committed notebook.
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXECUTE_NOTEBOOKS = $(if $(strip $(NB)),$(filter $(foreach n,$(NB),notebooks/$(n)%),$(NOTEBOOKS)),$(NOTEBOOKS))
EXECUTE_OPTIONS := --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.record_timing=False --ClearMetadataPreprocessor.enabled=True --ClearMetadataPreprocessor.clear_cell_metadata=False --ClearMetadataPreprocessor.preserve_nb_metadata_mask=kernelspec --ClearMetadataPreprocessor.preserve_nb_metadata_mask=language_info

.PHONY: lab test lint format execute bench quadrants env clean book handouts grade slides demo

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[lab,test,kit]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cvae)" >/dev/null
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	CVAE_QUICK=1 $(PY) -m pytest -v --durations=0

execute: $(STAMP)
	@test -n "$(EXECUTE_NOTEBOOKS)" || { echo "no notebook matches NB=$(NB)" >&2; exit 1; }
	@all=$$(date +%s); for nb in $(EXECUTE_NOTEBOOKS); do \
	    echo "running $$nb (full mode) ..."; start=$$(date +%s); \
	    CVAE_QUICK=0 $(VENV)/bin/jupyter nbconvert $(EXECUTE_OPTIONS) "$$nb" || exit 1; \
	    $(PY) -m tools.stored_outputs "$$nb" || exit 1; \
	    echo "  $$nb: $$(( $$(date +%s) - start )) s"; \
	done; echo "all notebooks run: $$(( $$(date +%s) - all )) s"

bench: $(STAMP)
	$(PY) benchmarks/bench_mlp_throughput.py --batch-size $(BATCH)

quadrants: $(STAMP)
	$(PY) -m cvae_utils.experiments.quadrants run --seeds $(SEEDS)

book: $(STAMP)
	$(PY) -m tools.book $(if $(STUDENTS),--students)

handouts: $(STAMP)
	$(PY) -m tools.handouts

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder [OUT=file.csv] [TIMEOUT=seconds] [JOBS=n]  (a folder of submitted assignment notebooks)" >&2; exit 2; }
	$(PY) -m tools.grade "$(SUBMISSIONS)" $(if $(OUT),--out "$(OUT)") $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(JOBS),--jobs $(JOBS))

slides: $(STAMP)
	$(PY) -m tools.slides

demo: $(STAMP)
	$(PY) -m tools.demo $(if $(DEMO_PORT),--port $(DEMO_PORT)) $(if $(OPEN),--open)

clean:
	rm -rf $(VENV) data/MNIST
