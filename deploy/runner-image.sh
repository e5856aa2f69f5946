#!/usr/bin/env bash
# Builds the runner image archive without Docker (in-cluster mode): a
# statically linked `netconform`, the scenarios, and Debian's static busybox
# (sh for the entrypoint, tar for `kubectl cp`), as one layer
# (agent/image/oci-archive.sh), user 65532.
#
#   deploy/runner-image.sh [IMAGE]   default IMAGE: localhost/netconform/runner:<crate version>
#
# Prints the archive path; import it like the agent's (kind load
# image-archive, or `ctr -n k8s.io images import` on each node).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
image=${1:-${NETCONFORM_RUNNER_IMAGE:-localhost/netconform/runner:$version}}
out="$root/target/netconform-runner.tar"
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || { echo "deploy/runner-image.sh: needs Debian's busybox-static ($busybox)" >&2; exit 1; }

bin=$(bash "$root/agent/image/static-binary.sh" netconform-suite netconform)

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
install -D -m 0755 "$bin" "$rootfs/netconform"
install -D -m 0755 "$root/deploy/runner-entrypoint.sh" "$rootfs/entrypoint.sh"
install -D -m 0755 "$busybox" "$rootfs/bin/busybox"
for applet in sh tar cat sleep ls gzip; do ln -s busybox "$rootfs/bin/$applet"; done
cp -r "$root/scenarios" "$rootfs/scenarios"
install -d -m 1777 "$rootfs/tmp" "$rootfs/reports"
bash "$root/agent/image/oci-archive.sh" --name "$image" --rootfs "$rootfs" --out "$out" \
  --entrypoint /bin/sh --entrypoint /entrypoint.sh --user 65532:65532 >&2
echo "$out"
