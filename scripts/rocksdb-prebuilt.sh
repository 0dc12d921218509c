#!/usr/bin/env bash
# Builds RocksDB's static library once per machine and prints the directory holding it.
#
# Compiling RocksDB's C++ costs about 20 CPU-minutes per profile, so every build of this
# workspace links a prebuilt `librocksdb.a` instead (librocksdb-sys skips its C++ build when
# ROCKSDB_LIB_DIR and ROCKSDB_STATIC are set). The cache is keyed by the librocksdb-sys
# version, which must match the one in Cargo.lock exactly: the C API changes between
# releases. Override the cache root with MICRO_ROCKSDB_CACHE.
set -euo pipefail

version="0.19.0+11.8.1"
cache="${MICRO_ROCKSDB_CACHE:-$HOME/.cache/micro}/librocksdb-sys-${version}"
if [[ -f "$cache/lib/librocksdb.a" ]]; then
  echo "$cache/lib"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<TOML
[package]
name = "rocksdb-prebuilt"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
librocksdb-sys = { version = "=${version}", default-features = false, features = ["lz4", "zstd", "bindgen-runtime"] }

[profile.release]
debug = false
TOML
echo 'fn main() {}' >"$work/src/main.rs"
echo "building librocksdb.a ${version} (once per machine; about 20 CPU-minutes)" >&2
(cd "$work" && env -u ROCKSDB_LIB_DIR -u ROCKSDB_STATIC cargo build --release --quiet >&2)
lib=$(find "$work/target/release/build" -path '*librocksdb-sys-*/out/librocksdb.a' | head -n 1)
[[ -n "$lib" ]] || { echo "librocksdb.a was not produced" >&2; exit 1; }
mkdir -p "$cache/lib.tmp"
cp "$lib" "$cache/lib.tmp/"
rm -rf "$cache/lib"
mv "$cache/lib.tmp" "$cache/lib"
echo "$cache/lib"
