#!/usr/bin/env bash
# oci-archive.sh: packs a root filesystem directory into a single-layer container
# image archive, without Docker or a registry.
#
#   oci-archive.sh --name docker.io/netconform/agent:dev --rootfs DIR --out FILE.tar \
#                  --entrypoint /agent [--cmd serve] [--user 65532:65532]
#
# The archive holds both an OCI image layout (oci-layout, index.json, blobs/) and a
# Docker-style manifest.json pointing at the same blobs, so `ctr images import`,
# `kind load image-archive` and `docker load` all accept it. It is reproducible:
# file order, owners and timestamps are fixed, so the same rootfs gives the same
# digest.
set -euo pipefail

name="" rootfs="" out="" user="" entrypoint=() cmd=()
while (($#)); do
  case $1 in
    --name) name=$2; shift 2 ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --entrypoint) entrypoint+=("$2"); shift 2 ;;
    --cmd) cmd+=("$2"); shift 2 ;;
    *) echo "oci-archive.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $name && -d $rootfs && -n $out ]] || {
  echo "usage: oci-archive.sh --name REF --rootfs DIR --out FILE [--entrypoint ARG]... [--cmd ARG]... [--user UID:GID]" >&2
  exit 2
}

json_array() { # prints its arguments as a JSON array of strings
  local first=1 s
  printf '['
  for s in "$@"; do
    ((first)) || printf ','
    first=0
    s=${s//\\/\\\\}; s=${s//\"/\\\"}
    printf '"%s"' "$s"
  done
  printf ']'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

# The image's / is the rootfs directory itself: it must not keep mktemp's 0700.
chmod 0755 "$rootfs"

# The layer: a tar with fixed order, owners and times, then gzip without a timestamp.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$rootfs" -cf "$work/layer.tar" .
diff_id=$(sha "$work/layer.tar")
gzip -n -9 "$work/layer.tar"
layer_digest=$(sha "$work/layer.tar.gz")
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$work/blobs/sha256/$layer_digest"

config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{"
config+="\"Entrypoint\":$(json_array "${entrypoint[@]}"),\"Cmd\":$(json_array "${cmd[@]}")"
[[ -n $user ]] && config+=",\"User\":\"$user\""
config+=",\"Env\":[\"PATH=/usr/local/bin:/usr/bin:/bin\"]},"
config+="\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},"
config+="\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"netconform oci-archive.sh\"}],"
config+="\"created\":\"1970-01-01T00:00:00Z\"}"
printf '%s' "$config" >"$work/config.json"
config_digest=$(sha "$work/config.json")
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$work/blobs/sha256/$config_digest"

manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
manifest+="\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size},"
manifest+="\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$layer_size}]}"
printf '%s' "$manifest" >"$work/manifest"
manifest_digest=$(sha "$work/manifest")
manifest_size=$(stat -c %s "$work/manifest")
mv "$work/manifest" "$work/blobs/sha256/$manifest_digest"

# ref.name is the tag (OCI); io.containerd.image.name is the full reference ctr uses.
tag=${name##*:}
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_digest" "$manifest_size" "$name" "$tag" >"$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' \
  "$config_digest" "$name" "$layer_digest" >"$work/manifest.json"

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$work" -cf "$out.tmp" oci-layout index.json manifest.json blobs
mv "$out.tmp" "$out"
echo "$out: $name sha256:$manifest_digest ($(du -h "$out" | cut -f1))"
