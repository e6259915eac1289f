# All set-up happens here: the first `make <target>` creates .venv and installs into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# glibc malloc keeps freed memory instead of unmapping it (see benchmarks/README.md).
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export TF_CPP_MIN_LOG_LEVEL ?= 3
# The data root the configs name their files under (docs/data.md); elsewhere ~/seqnets_data.
export SEQNETS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: demo test bench device-check clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,sklearn]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(PY) -m experiments.ablate --config=configs/ablate_formal.py:demo --workdir=runs/demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=10 tests

# On a machine with a GPU: install the extra first (.venv/bin/pip install -e '.[cuda12]').
device-check: $(STAMP)
	$(PY) -m benchmarks.device_check --out=device_check_results

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]' || echo "PyTorch not installable here: benchmarking without it"
	$(PY) -m benchmarks.rnn_bench --out=bench_results
	$(PY) -m benchmarks.rnn_bench --out=bench_results/large --shapes=large --allocators=tuned \
	    --contenders=sn_lstm,sn_gru_ra,flax_lstm,flax_optlstm,flax_gru,torch_lstm,torch_gru \
	    --reps=3 --warmup=1 --rounds=1
	$(PY) -m benchmarks.lm_bench --out=bench_results || echo "lm_bench needs PyTorch: skipped"
	$(PY) -m benchmarks.xla_flags --out=bench_results

clean:
	rm -rf $(VENV) runs bench_results
