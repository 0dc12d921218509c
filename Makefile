# One entry point for checks: CI runs `make test`, so local runs and CI cannot drift.
#
# RocksDB's C++ is compiled once per machine into a cached static library
# (scripts/rocksdb-prebuilt.sh) and linked from there by every build below.

ROCKSDB_LIB_DIR ?= $(shell scripts/rocksdb-prebuilt.sh)
export ROCKSDB_LIB_DIR
export ROCKSDB_STATIC := 1

## Seeds of the optimized simulation sweep CI runs (seconds each: about half of one).
SIM_CI_RELEASE_SEEDS ?= 300

.PHONY: test verify fix server bench sim toolchain-access deploy-check test-kube

## As root, the runtime builds and runs services as `nobody` (README, "Trust"), and
## cli/tests/system/t97_runtime.rs builds for real: that user must be able to run the
## toolchain under $HOME, so the home directory gets the search bit for others (its
## listing stays private).
## The same holds for the checkout (t97's crate depends on its framework/ by path, and
## cargo lists the checkout's root to find its git repository): a clone under
## `mktemp -d` (mode 0700) gets read and search on its root and search on its parents.
toolchain-access:
	@if [ "$$(id -u)" = 0 ]; then \
	  chmod o+x "$$HOME"; \
	  chmod o+rx "$(CURDIR)"; \
	  dir="$(CURDIR)"; \
	  while [ "$$dir" != / ]; do chmod o+x "$$dir"; dir=$$(dirname "$$dir"); done; \
	fi

## The README's test command: formatting, lints, tests and doc tests, docs.
test: verify

verify: toolchain-access
	cargo fmt --all -- --check
	scripts/check-deploy.sh
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace
	cargo run --release -p micro-simulation-tests --bin sim -- --count $(SIM_CI_RELEASE_SEEDS)
	cargo run --release -p micro-simulation-tests --bin sim -- --regressions
	RUSTDOCFLAGS="-D warnings --cfg tokio_unstable" cargo doc --workspace --no-deps

## The deployment files under deploy/: schemas, essentials, systemd-analyze verify.
deploy-check:
	scripts/check-deploy.sh

## Mutating fixes: formatting and machine-applicable lints.
fix:
	cargo clippy --workspace --all-targets --fix --allow-dirty --allow-staged
	cargo fmt --all

## `micro server` in release mode, linking the cached RocksDB.
server:
	cargo run --release --bin micro -- server

## Throughput and latency of the store through the proxy (docs/BENCHMARKS.md).
bench:
	cargo run --release --bin micro -- bench store

## A long deterministic-simulation sweep in release mode (SIM_SEEDS seeds, default 100).
sim:
	cargo run --release -p micro-simulation-tests --bin sim

## The Kubernetes runtime (feature `kubernetes`, docs/KUBERNETES-RUNTIME.md), which the
## default build leaves out: lints and tests in a target dir of its own, so the default
## build's artifacts are not rebuilt. No cluster needed: a fake API server answers.
test-kube:
	CARGO_TARGET_DIR=target/kube cargo clippy -p micro-actors --features kubernetes --all-targets -- -D warnings
	CARGO_TARGET_DIR=target/kube cargo clippy -p micro-cli --features kubernetes --lib --bins -- -D warnings
	CARGO_TARGET_DIR=target/kube cargo test -p micro-actors --features kubernetes --lib
	CARGO_TARGET_DIR=target/kube cargo test -p micro-cli --features kubernetes --lib
