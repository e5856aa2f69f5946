#!/usr/bin/env bash
# Builds one binary of this workspace statically linked (for images with no
# libc of their own) and prints its path.
#
#   agent/image/static-binary.sh PACKAGE BIN
#
# crt-static with an explicit --target links glibc statically into the
# binary only (not into build scripts).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
package=${1:?package} bin_name=${2:?binary name}
target=x86_64-unknown-linux-gnu
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --quiet --release -p "$package" --bin "$bin_name" --target "$target")
bin="$root/target/$target/release/$bin_name"
if ! ldd "$bin" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
  echo "agent/image/static-binary.sh: $bin is not statically linked" >&2
  exit 1
fi
echo "$bin"
