#!/usr/bin/env bash
# Builds the agent image archive without Docker: a statically linked
# netconform-agent in a single-layer image (agent/image/oci-archive.sh).
#
#   agent/image/build.sh [IMAGE]     default IMAGE: localhost/netconform/agent:<crate version>
#
# Prints the archive path. Load it into kind with
#   kind load image-archive target/netconform-agent.tar
# or into any containerd node with `ctr -n k8s.io images import`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
image=${1:-${NETCONFORM_AGENT_IMAGE:-localhost/netconform/agent:$version}}
out="$root/target/netconform-agent.tar"

# Statically linked: the image needs no libc of its own.
bin=$(bash "$root/agent/image/static-binary.sh" netconform-agent netconform-agent)

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
install -D -m 0755 "$bin" "$rootfs/netconform-agent"
install -d -m 1777 "$rootfs/tmp"
bash "$root/agent/image/oci-archive.sh" --name "$image" --rootfs "$rootfs" --out "$out" \
  --entrypoint /netconform-agent --cmd serve --cmd --http --cmd 8080 --user 65532:65532 >&2
echo "$out"
