#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every test with cargo-nextest.
# Usage: scripts/test.sh            (CI calls exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest (not found)"
  cargo install cargo-nextest --locked
fi

echo "==> tests"
cargo nextest run --workspace --profile ci
