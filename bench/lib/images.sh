# shellcheck shell=bash
# The images the peers run, built locally and imported into every node under
# their upstream names (nothing is pulled: the testbed has no registry).
# Sourced by bench/peers after testbed/lib/common.sh, node.sh and bench/lib/build.sh.
#
# Upstream's e2e images (test/utils/image/manifest.go) are Alpine or Debian
# images with a few tools. One Debian rootfs (debootstrap from Debian's
# archive, cached) stands in for all of them: the tools the tests run inside
# (sh, bash, dig, nslookup, getent, curl, nc, ip, iperf, nginx) plus agnhost
# built from the same Kubernetes module, and what agnhost's own Dockerfile adds
# (/coredns, porter's localhost.crt/.key, /uploads, user 1000, group 50000).

PEER_DEBIAN_SUITE=bookworm
PEER_PACKAGES=bash,bind9-dnsutils,curl,netcat-openbsd,iproute2,iperf,iputils-ping,nginx-light,procps,ca-certificates
PEER_IMAGES_DIR="$PEERS_CACHE/images-$K8S_VERSION"

# Upstream name -> which image stands in for it. The agnhost tags are e2e's
# (2.56 in v1.34's manifest) and cyclonus's (2.43, pkg/connectivity/probe/pod.go).
declare -A PEER_IMAGE_ALIASES=(
  [registry.k8s.io/e2e-test-images/agnhost:2.56]=agnhost
  [registry.k8s.io/e2e-test-images/agnhost:2.43]=agnhost
  [registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7]=dnsutils
  [registry.k8s.io/e2e-test-images/nginx:1.14-4]=nginx
  [registry.k8s.io/e2e-test-images/nginx:1.15-4]=nginx
  [registry.k8s.io/e2e-test-images/httpd:2.4.38-4]=nginx
  [registry.k8s.io/e2e-test-images/httpd:2.4.39-4]=nginx
  [registry.k8s.io/e2e-test-images/busybox:1.37.0-1]=busybox
  [registry.k8s.io/pause:3.10.1]=pause
)

# peer_rootfs: the cached Debian rootfs, keyed by suite and package list.
peer_rootfs() {
  local key; key=$(printf '%s %s' "$PEER_DEBIAN_SUITE" "$PEER_PACKAGES" | sha256sum | cut -c1-12)
  local dir="$PEERS_CACHE/rootfs-$PEER_DEBIAN_SUITE-$key"
  if [[ ! -f $dir.complete ]]; then
    command -v debootstrap >/dev/null || {
      log "installing Debian package debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    }
    log "peer images: debootstrap $PEER_DEBIAN_SUITE ($PEER_PACKAGES)"
    rm -rf "$dir"
    debootstrap --variant=minbase --include="$PEER_PACKAGES" "$PEER_DEBIAN_SUITE" "$dir" \
      http://deb.debian.org/debian >"$dir.log" 2>&1 || die "debootstrap failed (see $dir.log)"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    touch "$dir.complete"
  fi
  echo "$dir"
}

# build_peer_images: one archive per distinct image, in $PEER_IMAGES_DIR.
build_peer_images() {
  if [[ -f $PEER_IMAGES_DIR/.complete ]]; then
    log "peer images: cached in $PEER_IMAGES_DIR"
    return 0
  fi
  local base rootfs k8s_dir
  base=$(peer_rootfs)
  k8s_dir=$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION
  rootfs=$(mktemp -d /var/tmp/netconform-peer-rootfs.XXXX)
  cp -a "$base/." "$rootfs/"
  install -m 0755 "$E2E_OUT/bin/agnhost" "$rootfs/agnhost"
  ln -sf agnhost "$rootfs/agnhost-2"
  install -m 0755 "$NC_CACHE/coredns-$COREDNS_VERSION/bin/coredns" "$rootfs/coredns"
  install -m 0644 "$k8s_dir/test/images/agnhost/porter/localhost.crt" "$rootfs/localhost.crt"
  install -m 0644 "$k8s_dir/test/images/agnhost/porter/localhost.key" "$rootfs/localhost.key"
  install -d -m 0777 "$rootfs/uploads"
  chroot "$rootfs" sh -c 'groupadd -g 50000 group-defined-in-image &&
    useradd -u 1000 -M -G group-defined-in-image user-defined-in-image' ||
    die "adding agnhost's image users failed"
  mkdir -p "$PEER_IMAGES_DIR"
  local oci="$TESTBED_DIR/../agent/image/oci-archive.sh"
  log "peer images: packing agnhost, dnsutils, nginx (one shared layer)"
  bash "$oci" --name localhost/netconform-peers/agnhost:$K8S_VERSION --rootfs "$rootfs" \
    --out "$PEER_IMAGES_DIR/agnhost.tar" --entrypoint /agnhost --cmd pause >&2
  bash "$oci" --name localhost/netconform-peers/dnsutils:$K8S_VERSION --rootfs "$rootfs" \
    --out "$PEER_IMAGES_DIR/dnsutils.tar" --cmd bash >&2
  bash "$oci" --name localhost/netconform-peers/nginx:$K8S_VERSION --rootfs "$rootfs" \
    --out "$PEER_IMAGES_DIR/nginx.tar" --entrypoint nginx --cmd -g --cmd 'daemon off;' >&2
  rm -rf "$rootfs"

  # busybox: Debian's static busybox with every applet linked.
  rootfs=$(mktemp -d /var/tmp/netconform-peer-rootfs.XXXX)
  install -D -m 0755 /bin/busybox "$rootfs/bin/busybox"
  install -d -m 1777 "$rootfs/tmp"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  bash "$oci" --name localhost/netconform-peers/busybox:$K8S_VERSION --rootfs "$rootfs" \
    --out "$PEER_IMAGES_DIR/busybox.tar" --cmd sh >&2
  rm -rf "$rootfs"
  touch "$PEER_IMAGES_DIR/.complete"
}

# import_peer_images: imports each archive into every node, then tags it
# under each upstream name it stands in for (idempotent).
import_peer_images() {
  local n name src
  for n in "${NODES[@]}"; do
    for src in agnhost dnsutils nginx busybox; do
      node_ctr "$n" images import "$PEER_IMAGES_DIR/$src.tar" >/dev/null ||
        die "importing $src into $n failed"
    done
    for name in "${!PEER_IMAGE_ALIASES[@]}"; do
      src=${PEER_IMAGE_ALIASES[$name]}
      if [[ $src == pause ]]; then src=$PAUSE_IMAGE; else src=localhost/netconform-peers/$src:$K8S_VERSION; fi
      node_ctr "$n" images tag --force "$src" "$name" >/dev/null || die "tagging $name in $n failed"
    done
  done
  log "peer images: imported into ${NODES[*]}"
}
