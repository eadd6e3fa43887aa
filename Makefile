# The README's two commands, `make demo` and `make test`, each work alone on a fresh clone:
# both depend on `install`, which is idempotent and returns at once when nothing changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist): much of the suite waits on fresh processes, heartbeats and kills, so two
# share the 2 cores well (14 min 12 s vs 21 min 47 s for one, same tree). Tests are handed out one at a time,
# except that a file with a module-scoped fixture runs on one worker (tests/conftest.py).
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist load

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test-deps lint test test-fast models catalogue demo study-cifar100 study-cifar10 study-flowers study-shift-vs-attention \
        bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dashboard]'
	touch $(STAMP)

# The Debian packages whose servers the suite starts on loopback (as root; the tests that need one skip, saying
# so, where it is missing): PostgreSQL 15 for the shared-storage tests, a one-node SLURM for the cluster tests.
DEBIAN_TEST_PACKAGES := postgresql-15 slurmctld slurmd slurm-client munge

test-deps:
	@missing=$$(for p in $(DEBIAN_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "as root: apt-get install $$missing" >&2; exit 1; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null

# The whole suite (what CI runs), after the linter.
test: lint
	$(PYTEST) $(PYTEST_ARGS)

# The edit loop: everything but the tests marked slow.
test-fast: lint
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check benchbench tests

models: install
	$(BIN)/benchbench models

# After adding or changing a model: rebuild every reference model and rewrite benchbench/model_catalogue.json (what
# `benchbench models` prints; a test fails while it is stale).
catalogue: install
	$(BIN)/python -m benchbench.model_catalogue

# Studies: crash-safe and resumable (run the target again after an interruption). STUDY_ARGS passes options,
# e.g. make study-cifar100 STUDY_ARGS="--workers 2" or STUDY_ARGS="--storage postgresql://user@host/db".
STUDY_ARGS ?=

# The demo runs its 20 cells in two local workers, one core each.
demo: install
	$(BIN)/benchbench study studies/demo.toml --workers 2 $(STUDY_ARGS)

# The data download is idempotent (TFDS skips prepared data); the study itself never downloads.
study-cifar100: install
	$(BIN)/benchbench data download cifar100
	$(BIN)/benchbench study studies/cifar100.toml $(STUDY_ARGS)

study-cifar10: install
	$(BIN)/benchbench data download cifar10
	$(BIN)/benchbench study studies/cifar10.toml $(STUDY_ARGS)

study-flowers: install
	$(BIN)/benchbench data download tf_flowers
	$(BIN)/benchbench study studies/flowers.toml $(STUDY_ARGS)

# Swin-T vs Shift-T/light, one network with two token mixers (sized for a GPU).
study-shift-vs-attention: install
	$(BIN)/benchbench data download cifar100
	$(BIN)/benchbench study studies/shift_vs_attention.toml $(STUDY_ARGS)

# Speed and MFU of the reference configurations (2-3 fresh processes each), the input pipelines and the runner
# overhead, the whole demo as a study: reports/bench/<host>.md (19.5 minutes on the 2-core EPYC at 87528dd).
bench: install
	$(BIN)/benchbench bench --suite --out reports/bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
