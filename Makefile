# gar_ros: `make demo` sets up and runs the demo; `make test` sets up and runs every test.
SHELL := /bin/bash
ENV := source scripts/env.sh &&

.PHONY: env demo test bench clean

env:
	bash scripts/setup_env.sh

demo: env
	$(ENV) python -m gar_ros.demo

test: env
	$(ENV) python -m pytest test $(PYTEST_ARGS)

bench: env
	$(ENV) python benchmarks/bench_ros_overhead.py

clean:
	rm -rf build install log .venv/.build-stamp
