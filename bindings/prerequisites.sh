# Sourced by bindings/build.sh and bindings/build_windows.sh: their prerequisites.

# need_debian_packages WHO PACKAGE...: the Debian packages not installed yet (a package named like a
# command on PATH, e.g. cmake from PyPI, counts as there) are installed with apt-get when running
# as root (a container, CI); anyone else is told what to install and WHO stops (never sudo).
need_debian_packages() {
  local who="$1" pkg
  shift
  local need=()
  for pkg in "$@"; do
    command -v "$pkg" >/dev/null && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  [[ ${#need[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$who: missing prerequisites: ${need[*]}" >&2
    echo "$who: install them first, e.g.: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "== $who: installing Debian packages (running as root): ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

# ONNX Runtime's C/C++ headers.
#
# fetch_ort_headers ROOT: nothing when $ONNXRUNTIME_ROOT is set (its include/ is used); else, once,
# the npm package com.github.asus4.onnxruntime@0.4.9 (ONNX Runtime 1.29 for Unity, MIT,
# Microsoft's files): `npm pack`, then only the headers, the licence and the Linux x64 library are
# extracted into ROOT/third_party/onnxruntime/ (git-ignored). No PyPI or Debian package ships the
# headers; the headers are the same for every platform.
fetch_ort_headers() {
  local ort_dir="$1/third_party/onnxruntime" npm_pkg="com.github.asus4.onnxruntime@0.4.9"
  if [[ -n "${ONNXRUNTIME_ROOT:-}" ]]; then
    echo "== ONNX Runtime headers from ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
    return 0
  fi
  [[ -f "$ort_dir/include/onnxruntime_cxx_api.h" ]] && return 0
  echo "== fetching ONNX Runtime headers: npm pack $npm_pkg"
  local tmp tgz hdr
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$npm_pkg" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  hdr='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64_x86_64-simulator/onnxruntime.framework/Headers'
  tar xzf "$tgz" -C "$tmp" --wildcards "$hdr/*.h" 'package/Plugins/Linux/x64/libonnxruntime.so' \
      'package/LICENSE' 'package/ThirdPartyNotices.txt'
  mkdir -p "$ort_dir/include" "$ort_dir/lib"
  cp "$tmp/$hdr"/*.h "$ort_dir/include/"
  cp "$tmp/package/Plugins/Linux/x64/libonnxruntime.so" "$ort_dir/lib/"
  cp "$tmp/package/LICENSE" "$tmp/package/ThirdPartyNotices.txt" "$ort_dir/"
  echo "$npm_pkg (npm registry); headers and Linux x64 library of ONNX Runtime 1.29" > "$ort_dir/SOURCE"
  rm -rf "$tmp"
}
