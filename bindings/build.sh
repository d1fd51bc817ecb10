#!/usr/bin/env bash
# Build the native core from a clean checkout, offline (package registries only), and test it.
#
#   bash bindings/build.sh              Release build: libtalkinghead.{so,a}, the C example, the C++
#                                       tests, talkinghead._native (copied into sdk/talkinghead/)
#                                       when a Python with pybind11 is there; then ctest (no Python:
#                                       the tests read the conformance corpus in contract/).
#   bash bindings/build.sh --sanitize   The same core, example and tests with AddressSanitizer +
#                                       UndefinedBehaviorSanitizer (no Python module); then ctest.
#   Options: --no-test (build only), --no-python (no pybind11 module), --jobs N (default 2),
#            --build-dir DIR.
#
# Dependencies it sets up:
#   - Debian: cmake, g++, nlohmann-json3-dev, doctest-dev. Prerequisites: as root (a container, CI)
#     build.sh installs the missing ones with apt-get; otherwise it names them and stops (never sudo).
#   - ONNX Runtime headers: $ONNXRUNTIME_ROOT/include when set, else the npm package
#     com.github.asus4.onnxruntime@0.4.9 (bindings/prerequisites.sh: ONNX Runtime 1.29 for Unity, MIT,
#     Microsoft's files; the headers, the license and the Linux x64 library go to
#     third_party/onnxruntime/, git-ignored).
#   - ONNX Runtime library: none at build time. The core loads it at run time (docs/embedding.md);
#     the tests use the onnxruntime wheel's library from the Python environment, and also run the C
#     example against the npm package's 1.29 library to show one build serves both releases.
#   - For the Python module only: pybind11 and numpy from the Python environment ($PYTHON, else
#     .venv/bin/python, else python3); without them the module is skipped, the rest is built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SANITIZE=0
RUN_TESTS=1
WITH_PYTHON=1
JOBS="${JOBS:-2}"
BUILD_DIR=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) SANITIZE=1 ;;
    --no-test) RUN_TESTS=0 ;;
    --no-python) WITH_PYTHON=0 ;;
    --jobs) JOBS="$2"; shift ;;
    --build-dir) BUILD_DIR="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$BUILD_DIR" ]]; then
  BUILD_DIR="build/native"
  [[ $SANITIZE == 1 ]] && BUILD_DIR="build/native-asan"
fi

say() { echo "== build.sh: $*"; }
export ORT_DISABLE_TELEMETRY=1

# ---- Python (only for the talkinghead._native module) ----------------------------------------
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="$(command -v python3 || true)"; fi
fi
if [[ $WITH_PYTHON == 1 && $SANITIZE == 0 && -n "$PYTHON" ]] && "$PYTHON" -c "import pybind11, numpy" 2>/dev/null; then
  say "python: $PYTHON (builds talkinghead._native)"
else
  [[ $WITH_PYTHON == 1 && $SANITIZE == 0 ]] && say "no Python with pybind11 and numpy: building without the talkinghead._native module"
  WITH_PYTHON=0
fi

# ---- Debian packages --------------------------------------------------------------------------
# shellcheck source=bindings/prerequisites.sh
source "$ROOT/bindings/prerequisites.sh"
need=(cmake g++ nlohmann-json3-dev doctest-dev)
need_debian_packages build.sh "${need[@]}"

# ---- ONNX Runtime headers (and a second runtime for the tests) ---------------------------------
fetch_ort_headers "$ROOT"
ORT_DIR="$ROOT/third_party/onnxruntime"

# The runtime the tests load: the onnxruntime wheel's library (what the Python SDK runs).
TEST_ORT=""
if [[ -n "$PYTHON" ]]; then
  TEST_ORT="$("$PYTHON" - <<'PY' 2>/dev/null || true
import glob, importlib.util, os
spec = importlib.util.find_spec("onnxruntime")
libs = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "capi", "libonnxruntime.so*"))) if spec else []
print(libs[-1] if libs else "")
PY
)"
fi
OTHER_ORT=""
[[ -f "$ORT_DIR/lib/libonnxruntime.so" ]] && OTHER_ORT="$ORT_DIR/lib/libonnxruntime.so"
if [[ -z "$TEST_ORT" ]]; then TEST_ORT="$OTHER_ORT"; OTHER_ORT=""; fi
say "ONNX Runtime for the tests: ${TEST_ORT:-<library search path>}${OTHER_ORT:+ (and $OTHER_ORT)}"

# ---- configure, build -------------------------------------------------------------------------
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] && GEN=()  # keep the generator of an existing build
args=(-S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release
      -DTALKINGHEAD_TEST_ORT_LIBRARY="$TEST_ORT" -DTALKINGHEAD_TEST_ORT_LIBRARY_OLD="$OTHER_ORT")
if [[ $WITH_PYTHON == 1 ]]; then
  args+=(-DTALKINGHEAD_BUILD_PYTHON=ON -DPython3_EXECUTABLE="$PYTHON")
else
  args+=(-DTALKINGHEAD_BUILD_PYTHON=OFF)
fi
if [[ $SANITIZE == 1 ]]; then
  # -O1 -g1: quick to compile, still readable stacks.
  args+=(-DTALKINGHEAD_SANITIZE=ON -DTALKINGHEAD_BUILD_STATIC=OFF
         -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1")
fi
[[ -n "${ONNXRUNTIME_ROOT:-}" ]] && args+=(-DONNXRUNTIME_ROOT="$ONNXRUNTIME_ROOT")
start=$(date +%s)
cmake "${args[@]}" >/dev/null
say "building in $BUILD_DIR with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"
say "built in $(( $(date +%s) - start )) s"

if [[ $WITH_PYTHON == 1 ]]; then
  mod="$(ls "$BUILD_DIR"/_native*.so 2>/dev/null | head -n1 || true)"
  if [[ -n "$mod" ]]; then
    cp -f "$mod" "$ROOT/sdk/talkinghead/"
    say "installed $(basename "$mod") into sdk/talkinghead/ (import talkinghead._native)"
  fi
fi

# ---- test -------------------------------------------------------------------------------------
if [[ $RUN_TESTS == 1 ]]; then
  say "ctest"
  (cd "$BUILD_DIR" && ctest --output-on-failure -j 1)
fi
