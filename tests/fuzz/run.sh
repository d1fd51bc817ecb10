#!/usr/bin/env bash
# Fuzz the readers of untrusted bytes for a fixed budget each (issue 18): the C++ core's manifest
# parser, ONNX header reader and shot path (libFuzzer with ASan + UBSan; needs clang, Debian's
# `clang` package) and the Python SDK's manifest parser, ONNX header reader and avatar loader
# (atheris: `pip install ".[fuzz]"`). Not run by CI (a budget, not a test); what it finds goes into
# tests/fuzz/crashes/, which tests/sdk/test_fuzz_regressions.py and test_core replay.
#
#   bash tests/fuzz/run.sh [SECONDS_PER_TARGET (default 300)] [--only native|python]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH="${1:-300}"
ONLY=""
if [[ "${2:-}" == "--only" ]]; then ONLY="${3:?--only takes native or python}"; fi
OUT="${FUZZ_OUT:-build/fuzz}"
mkdir -p "$OUT" tests/fuzz/crashes
PY="${PYTHON:-.venv/bin/python}"
summary() { grep -E "stat::number_of_executed_units|SUMMARY|Test unit written" "$1" | sed "s#^#  $2: #" || true; }

if [[ "$ONLY" != python ]]; then
  for target in manifest onnx shot; do
    T=$(echo "$target" | tr a-z A-Z)
    clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -DTALKINGHEAD_VERSION='"fuzz"' -DFUZZ_$T -Ibindings/src -Ibindings/include -Itests/fuzz tests/fuzz/fuzz_native.cpp \
      bindings/src/manifest.cpp bindings/src/sha256.cpp bindings/src/geometry.cpp bindings/src/input_limits.cpp \
      bindings/src/log.cpp bindings/src/platform.cpp -o "$OUT/fuzz_$target"
    mkdir -p "$OUT/corpus_native_$target"
    "$OUT/fuzz_$target" "$OUT/corpus_native_$target" "tests/fuzz/corpus/$target" -max_total_time="$SECONDS_EACH" \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="tests/fuzz/crashes/native_${target}_" -print_final_stats=1 \
      > "$OUT/native_$target.log" 2>&1 || echo "native $target: stopped with a finding (see $OUT/native_$target.log)"
    summary "$OUT/native_$target.log" "native $target"
  done
fi
if [[ "$ONLY" != native ]]; then
  for target in manifest onnx avatar; do
    mkdir -p "$OUT/corpus_python_$target"
    "$PY" tests/fuzz/fuzz_python.py "$target" --seconds "$SECONDS_EACH" --corpus "$OUT/corpus_python_$target" \
      > "$OUT/python_$target.log" 2>&1 || echo "python $target: stopped with a finding (see $OUT/python_$target.log)"
    summary "$OUT/python_$target.log" "python $target"
  done
fi
