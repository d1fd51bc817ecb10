#!/usr/bin/env bash
# Cross-build the native core for Windows x64 with Debian's mingw-w64, and run its tests (ctest)
# under Wine against the official Windows ONNX Runtime DLL. No Windows machine needed.
#
#   bash bindings/build_windows.sh [--no-test] [--jobs N] [--build-dir DIR] [--ort-version V]
#
# Builds talkinghead.dll (+ its import library), the static library, the C example and the C++
# tests into DIR/bin (default build/windows), then runs ctest: every test program runs through
# Wine, reads contract/ (no Python), and loads onnxruntime.dll from beside talkinghead.dll.
#
# Prerequisites (Debian): cmake, g++-mingw-w64-x86-64-posix, wine (tests), nlohmann-json3-dev and
# doctest-dev (header-only: their headers are staged for the cross compiler), npm (the headers).
# As root the missing ones are installed with apt-get; anyone else is told what to install.
#   - ONNX Runtime headers: as bindings/build.sh ($ONNXRUNTIME_ROOT/include, else the npm package).
#   - onnxruntime.dll: $ONNXRUNTIME_DLL when set; else the onnxruntime win_amd64 wheel from PyPI
#     (`pip download`, version --ort-version, default 1.32.0), whose onnxruntime/capi/onnxruntime.dll
#     is Microsoft's official Windows build (the wheel has no headers and no import library, which
#     this core does not need: it loads the DLL at run time).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_TESTS=1
JOBS="${JOBS:-2}"
BUILD_DIR="build/windows"
ORT_VERSION="1.32.0"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-test) RUN_TESTS=0 ;;
    --jobs) JOBS="$2"; shift ;;
    --build-dir) BUILD_DIR="$2"; shift ;;
    --ort-version) ORT_VERSION="$2"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build_windows.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
BUILD_DIR="$(mkdir -p "$BUILD_DIR" && cd "$BUILD_DIR" && pwd)"
say() { echo "== build_windows.sh: $*"; }

# shellcheck source=bindings/prerequisites.sh
source "$ROOT/bindings/prerequisites.sh"
need=(cmake g++-mingw-w64-x86-64-posix nlohmann-json3-dev doctest-dev)
[[ $RUN_TESTS == 1 ]] && need+=(wine)
need_debian_packages build_windows.sh "${need[@]}"
fetch_ort_headers "$ROOT"

# Header-only dependencies for the cross compiler: only their own folders (the host's /usr/include
# as a whole would shadow the mingw C library's headers).
DEPS="$BUILD_DIR/deps"
mkdir -p "$DEPS/include"
ln -sfn /usr/include/nlohmann "$DEPS/include/nlohmann"
ln -sfn /usr/include/doctest "$DEPS/include/doctest"
export TALKINGHEAD_WINDOWS_DEPS="$DEPS"

# ---- onnxruntime.dll ----------------------------------------------------------------------------
ORT_WIN="$ROOT/third_party/onnxruntime-win-$ORT_VERSION"
if [[ -n "${ONNXRUNTIME_DLL:-}" ]]; then
  DLL="$ONNXRUNTIME_DLL"
else
  DLL="$ORT_WIN/onnxruntime.dll"
  if [[ ! -f "$DLL" ]]; then
    PY="${PYTHON:-}"
    [[ -z "$PY" && -x "$ROOT/.venv/bin/python" ]] && PY="$ROOT/.venv/bin/python"
    PY="${PY:-python3}"
    say "fetching onnxruntime $ORT_VERSION for Windows: pip download (win_amd64 wheel)"
    tmp="$(mktemp -d)"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --platform win_amd64 --python-version 3.11 \
        "onnxruntime==$ORT_VERSION" -d "$tmp"
    mkdir -p "$ORT_WIN"
    "$PY" - "$tmp" "$ORT_WIN" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = name.rsplit("/", 1)[-1]
        if name.startswith("onnxruntime/capi/") and base.endswith(".dll") or base in ("LICENSE", "ThirdPartyNotices.txt"):
            with open(f"{sys.argv[2]}/{base}", "wb") as out:
                out.write(z.read(name))
PY
    echo "onnxruntime $ORT_VERSION win_amd64 wheel (PyPI): onnxruntime/capi/*.dll" > "$ORT_WIN/SOURCE"
    rm -rf "$tmp"
  fi
fi
say "onnxruntime.dll: $DLL"

# ---- configure, build -----------------------------------------------------------------------------
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] && GEN=()
args=(-S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/mingw-w64-x86_64.cmake" -DTALKINGHEAD_BUILD_PYTHON=OFF)
[[ -n "${ONNXRUNTIME_ROOT:-}" ]] && args+=(-DONNXRUNTIME_ROOT="$ONNXRUNTIME_ROOT")
start=$(date +%s)
cmake "${args[@]}" >/dev/null
say "building in $BUILD_DIR with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS"
say "built in $(( $(date +%s) - start )) s"
# The official DLL beside talkinghead.dll: the loader's own search finds it there.
cp -f "$(dirname "$DLL")"/*.dll "$BUILD_DIR/bin/"

# ---- test under Wine ------------------------------------------------------------------------------
if [[ $RUN_TESTS == 1 ]]; then
  export WINEPREFIX="$BUILD_DIR/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  if [[ ! -f "$WINEPREFIX/system.reg" ]]; then
    say "creating a Wine prefix (once)"
    wineboot -i >/dev/null 2>&1 || true
    wineserver -w || true
  fi
  say "ctest under $(wine --version 2>/dev/null || echo wine)"
  (cd "$BUILD_DIR" && ctest --output-on-failure -j 1)
fi
