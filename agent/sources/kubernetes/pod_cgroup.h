// Where the kubelet puts a pod's cgroup, for both cgroup drivers:
//   systemd : /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid, '-' -> '_'>.slice
//             /kubepods.slice/kubepods-pod<uid_>.slice            (Guaranteed)
//   cgroupfs: /kubepods/<qos>/pod<uid>
//             /kubepods/pod<uid>                                  (Guaranteed)
// with <qos> = burstable | besteffort. containerd and CRI-O only differ below
// the pod level (cri-containerd-<id>.scope vs crio-<id>.scope, or
// <id> under cgroupfs), and every container of a pod sits below the pod
// cgroup, so the pod cgroup is all the hooks and the workload list need.
// The filesystem is probed, not assumed: the cgroup2 mount root is a
// parameter so tests build the trees in a temp dir.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace nodemesh::kube {

enum class CgroupDriver { kSystemd, kCgroupfs };
const char* toString(CgroupDriver d);

// "/kubepods.slice" or "/kubepods": the subtree every pod lives in.
std::string kubepodsRoot(CgroupDriver d);

// The pod cgroup path (relative to the cgroup2 root, starting with '/') a
// driver uses for a pod. qosClass is the pod's status.qosClass.
std::string podCgroupPath(CgroupDriver d, const std::string& podUid, const std::string& qosClass);

// Which driver's kubepods root exists under mountRoot (the systemd one wins
// when both exist, as on a host that switched drivers and kept the old tree).
std::optional<CgroupDriver> detectCgroupDriver(const std::string& mountRoot);

// Probes mountRoot for the pod's cgroup: the detected (or given) driver
// first, then the other one; every QoS class when qosClass is empty (status
// not reported yet). Returns the relative path, or nullopt when the kubelet
// has not created it yet.
std::optional<std::string> findPodCgroup(const std::string& mountRoot, const std::string& podUid,
                                         const std::string& qosClass,
                                         std::optional<CgroupDriver> preferred = std::nullopt);

}  // namespace nodemesh::kube
