#!/usr/bin/env bash
# Run a command with AVX-512 hidden from CPUID (bench/avx2/mask_avx512.c says how and what it is
# not), so ONNX Runtime and numpy take their AVX2 code paths on this CPU:
#   bench/avx2/run.sh python bench/live.py ...
# The library is built into build/avx2/ on first use (needs a C compiler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../../build/avx2"
lib="$out/mask_avx512.so"
if [[ ! -f "$lib" || "$here/mask_avx512.c" -nt "$lib" ]]; then
  mkdir -p "$out"
  cc -O2 -shared -fPIC -o "$lib" "$here/mask_avx512.c"
fi
[[ $# -gt 0 ]] || { echo "usage: bench/avx2/run.sh COMMAND [ARGS...]" >&2; exit 2; }
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
