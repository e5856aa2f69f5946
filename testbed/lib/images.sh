# shellcheck shell=bash
# The images the testbed imports into every node. Built locally from static
# binaries as single-layer archives (agent/image/oci-archive.sh); nothing is pulled.

PAUSE_IMAGE=localhost/netconform/pause:3.10
COREDNS_IMAGE=localhost/netconform/coredns:$COREDNS_VERSION
BUSYBOX_IMAGE=localhost/netconform/busybox:testbed
IMAGES_DIR="$NC_STATE/images"
IMAGE_ARCHIVES=()
OCI_ARCHIVE="$TESTBED_DIR/../agent/image/oci-archive.sh"

# image_from_binary NAME BINARY TARGET_PATH ENTRYPOINT...: a rootfs holding one binary.
image_from_binary() {
  local name=$1 binary=$2 target=$3; shift 3
  local rootfs out
  rootfs=$(mktemp -d)
  out="$IMAGES_DIR/$(basename "${name%%:*}").tar"
  install -D -m 0755 "$binary" "$rootfs$target"
  local args=() e
  for e in "$@"; do args+=(--entrypoint "$e"); done
  bash "$OCI_ARCHIVE" --name "$name" --rootfs "$rootfs" --out "$out" "${args[@]}" >/dev/null
  rm -rf "$rootfs"
  IMAGE_ARCHIVES+=("$out")
}

build_images() {
  mkdir -p "$IMAGES_DIR"
  local pause_bin="$NC_CACHE/pause/pause"
  if [[ ! -x $pause_bin || $TESTBED_DIR/images/pause.c -nt $pause_bin ]]; then
    mkdir -p "$NC_CACHE/pause"
    gcc -static -Os -s -o "$pause_bin" "$TESTBED_DIR/images/pause.c" || die "building pause failed"
  fi
  image_from_binary "$PAUSE_IMAGE" "$pause_bin" /pause /pause
  image_from_binary "$COREDNS_IMAGE" "$NC_CACHE/coredns-$COREDNS_VERSION/bin/coredns" /coredns /coredns

  # A small smoke-test image: Debian's static busybox with its applets linked.
  local rootfs; rootfs=$(mktemp -d)
  install -D -m 0755 /bin/busybox "$rootfs/bin/busybox"
  install -d -m 1777 "$rootfs/tmp"
  local applet
  for applet in sh ls cat echo sleep nc wget nslookup ip hostname httpd printf grep true; do
    ln -s busybox "$rootfs/bin/$applet"
  done
  bash "$OCI_ARCHIVE" --name "$BUSYBOX_IMAGE" --rootfs "$rootfs" --out "$IMAGES_DIR/busybox.tar" \
    --entrypoint /bin/sh >/dev/null
  rm -rf "$rootfs"
  IMAGE_ARCHIVES+=("$IMAGES_DIR/busybox.tar")

  # The netconform agent: built from this checkout (or a given archive).
  local agent=${NETCONFORM_AGENT_ARCHIVE:-}
  if [[ -z $agent ]]; then
    log "agent image: agent/image/build.sh"
    agent=$(bash "$TESTBED_DIR/../agent/image/build.sh") || die "building the agent image failed"
  fi
  [[ -f $agent ]] || die "agent image archive $agent does not exist"
  IMAGE_ARCHIVES+=("$agent")
}
