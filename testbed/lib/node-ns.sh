#!/usr/bin/env bash
# Runs as the "holder" of one node's mount namespace, already inside the node's
# network namespace (ip netns exec) and a private mount namespace (unshare -m).
# It prepares the mounts containerd and kubelet need, then sleeps; both are
# started later with nsenter into this process's namespaces.
#   node-ns.sh NODE_DIR CGROUP_ROOT
set -euo pipefail
node_dir=$1 cgroup_root=$2

# `ip netns exec` remounted /sys, which hides the cgroup hierarchies: mount them
# again exactly as the host has them (same controllers, same hierarchy).
mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
while read -r _ target fstype opts _; do
  case $fstype in
    cgroup | cgroup2) ;;
    *) continue ;;
  esac
  [[ $target == /sys/fs/cgroup/* ]] || continue
  mkdir -p "$target"
  mount -t "$fstype" -o "$opts" "$fstype" "$target"
  mkdir -p "$target/$cgroup_root"
done </proc/1/mounts

# Paths kubelet and containerd hard-code: give each node its own copy.
for d in /var/log/pods /var/log/containers /run/containerd; do
  if [[ ! -d $d ]]; then
    mkdir -p "$d"
    echo "$d" >>"$node_dir/created-host-dirs"
  fi
  mkdir -p "$node_dir/mnt$d"
  mount --bind "$node_dir/mnt$d" "$d"
done

echo ready >"$node_dir/holder-ready"
exec sleep infinity
