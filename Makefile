# The README names two commands: `make demo` and `make test`. Both install
# what is missing first (`make install`, idempotent, into $(VENV)).
# `make test` is the whole suite (CI); `make test-fast` leaves out the tests
# marked runner / subprocess / overfit / slow (tests/tiers.py) for the
# edit-test loop.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.render-pretrain-installed
PYTEST_ARGS ?=
export RENDER_PRETRAIN_SHARED ?= $(abspath ../shared)

.PHONY: install test test-fast lint demo doctor bench transfer clean

$(STAMP): setup.py tools/install.sh
	VENV=$(VENV) bash tools/install.sh
	touch $(STAMP)

install: $(STAMP)

doctor: install
	$(PY) tools/check_env.py

test: install
	$(PY) -m pytest tests -q --durations=20 $(PYTEST_ARGS)

FAST_TIER := not (runner or subprocess or overfit or slow)

test-fast: install
	$(PY) -m pytest tests -q --durations=10 -m "$(FAST_TIER)" $(PYTEST_ARGS)

# Style check (settings in setup.cfg).
lint: install
	$(PY) -m flake8

demo: install
	VENV=$(VENV) bash tools/demo.sh

# The speed / memory benchmarks (about 15 minutes on 2 cores): their JSON lines,
# with the machine and the commit, go to docs/results/benchmarks.jsonl, rendered as
# docs/benchmarks.md. Then the GPU sizing of the paper configs (about 20 minutes):
# docs/results/model_sizing.jsonl, rendered as README.md's model table. The
# transfer experiment (about an hour) has its own target.
bench: install
	$(PY) tools/benchmarks/report.py run --out docs/results/benchmarks.jsonl
	$(PY) tools/benchmarks/report.py render --jsonl docs/results/benchmarks.jsonl \
	  --out docs/benchmarks.md
	$(PY) tools/benchmarks/report.py run --sizing --out docs/results/model_sizing.jsonl
	$(PY) tools/benchmarks/model_sizing.py --readme README.md --jsonl docs/results/model_sizing.jsonl

# The transfer experiment (README "Transfer experiment"): every fine-tuning cell runs once
# per seed; `make transfer SEEDS=1` is the quicker single-seed version (no intervals).
SEEDS ?= 3

transfer: install
	$(PY) tools/benchmarks/transfer.py --world-dir data/transfer-world --work-dir work_dirs/transfer \
	  --seeds $(SEEDS) --out work_dirs/transfer/results.json
	$(PY) tools/benchmarks/transfer.py --table work_dirs/transfer/results.json --readme README.md \
	  --history docs/results/transfer_history.jsonl --plot docs/images/transfer.png
	cp work_dirs/transfer/results.json docs/results/transfer_results.json

clean:
	rm -rf work_dirs data/synthetic-demo
