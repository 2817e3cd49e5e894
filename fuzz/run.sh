#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after the other
# in one process each, starting from the committed seeds in corpus/TARGET/.
# New inputs go to target/run-corpus/TARGET/ (kept between runs, never
# committed). Prints each target's runs and coverage; fails when a target
# crashes, panics, runs out of memory or takes over 10 s on one input, and
# says where the input that did it was saved (artifacts/TARGET/).
#
# Needs the nightly toolchain (rustup); installs cargo-fuzz when missing.
# Targets are built without a sanitizer: the code under test is safe Rust,
# and AddressSanitizer would halve the runs.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: fuzz/run.sh [SECONDS]   (seconds per target, default 60)" >&2
  exit 2
fi

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz/run.sh: cargo fuzz needs the nightly toolchain, and rustup lists none;" >&2
  echo "install it with: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The largest input each target is given, in bytes: a few times its seeds.
max_len() {
  case $1 in
    dataset) echo 32768 ;;
    config) echo 16384 ;;
    spec) echo 8192 ;;
    result) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

cargo +nightly fuzz build --sanitizer none

targets=$(cargo +nightly fuzz list)
passed=0
failed=0
for target in $targets; do
  scratch=target/run-corpus/$target
  log=target/run-logs/$target.log
  mkdir -p "$scratch" "$(dirname "$log")" "artifacts/$target"
  status=0
  cargo +nightly fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  coverage=$(grep -E '^#[0-9]+[[:space:]].*cov: [0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $target: ok, ${runs:-?} runs in ${seconds} s, ${coverage:-no coverage figures}"
  else
    failed=$((failed + 1))
    echo "fuzz $target: FAILED (exit $status) after ${runs:-?} runs, ${coverage:-no coverage figures}" >&2
    grep -E 'panicked at|^thread|ERROR: libFuzzer|SUMMARY|Test unit written to|out-of-memory|timeout' "$log" | head -n 20 >&2 || true
    echo "full log: fuzz/$log; reproduce with: cargo +nightly fuzz run --sanitizer none $target fuzz/artifacts/$target/<file>" >&2
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
