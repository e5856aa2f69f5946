# shellcheck shell=bash
# `down`: stops what `up` started, by the PIDs it recorded (and, for containers,
# by the cgroups and mount namespaces only the testbed's nodes use), then removes
# namespaces, links, iptables rules, cgroups and state. The build cache stays.

# pids_in_cgroup_tree DIR: every PID in a cgroup directory and below it.
pids_in_cgroup_tree() {
  [[ -d $1 ]] || return 0
  find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# rm_cgroup_tree DIR: removes a cgroup directory, children first.
rm_cgroup_tree() {
  [[ -d $1 ]] || return 0
  find "$1" -depth -type d -exec rmdir {} \; 2>/dev/null || true
}

# pids_in_mount_ns NS_LINK: processes whose mount namespace is NS_LINK (mnt:[inode]).
pids_in_mount_ns() {
  local want=$1 p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$want" ]] && echo "${p#/proc/}"
  done
  return 0
}

teardown() {
  local started=$SECONDS n name pid
  # Node-level processes first, so nothing restarts containers while we stop them.
  for name in kube-scheduler kube-controller-manager; do
    [[ -f $PIDS/$name.pid ]] && stop_pid "$(cat "$PIDS/$name.pid")"
  done
  for n in "${NODES[@]}"; do
    for name in netpol kube-proxy kubelet; do
      [[ -f $PIDS/$n-$name.pid ]] && stop_pid "$(cat "$PIDS/$n-$name.pid")"
    done
    # Containers: everything in the node's own cgroup root.
    local cg; cg=$(node_cgroup "$n")
    for pid in $(pids_in_cgroup_tree "/sys/fs/cgroup/pids/$cg"); do kill -KILL "$pid" 2>/dev/null || true; done
    [[ -f $PIDS/$n-containerd.pid ]] && stop_pid "$(cat "$PIDS/$n-containerd.pid")"
    # containerd's shims outlive containerd; they run in the node's mount namespace.
    if [[ -f $PIDS/$n-holder.pid ]]; then
      local holder mntns; holder=$(cat "$PIDS/$n-holder.pid")
      if mntns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null); then
        for pid in $(pids_in_mount_ns "$mntns"); do
          [[ $pid == "$holder" ]] || kill -KILL "$pid" 2>/dev/null || true
        done
      fi
      stop_pid "$holder"
    fi
  done
  for name in kube-apiserver etcd; do
    [[ -f $PIDS/$name.pid ]] && stop_pid "$(cat "$PIDS/$name.pid")"
  done

  for n in "${NODES[@]}"; do
    local cg d; cg=$(node_cgroup "$n")
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do rm_cgroup_tree "$d"; done
    if [[ -f $(node_dir "$n")/created-host-dirs ]]; then
      while read -r d; do rmdir "$d" 2>/dev/null || true; done <"$(node_dir "$n")/created-host-dirs"
    fi
  done
  for n in "${NODES[@]}" "$OUTSIDE_NS"; do
    ip netns del "$n" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment netconform-testbed -j ACCEPT 2>/dev/null; do :; done
  # Every mount the testbed made lived in a node's mount namespace, which is gone
  # with its last process: refuse to delete state that is still mounted somewhere.
  if grep -q " $NC_STATE" /proc/self/mountinfo; then
    die "mounts under $NC_STATE remain (grep $NC_STATE /proc/self/mountinfo); state kept"
  fi
  rm -rf "$NC_STATE"
  log "testbed is down ($((SECONDS - started))s)"
}
