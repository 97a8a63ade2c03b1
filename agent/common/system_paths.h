// Where the kernel's pseudo filesystems live on this host. Discovered from
// /proc/mounts, never assumed: cgroup v2 sits at /sys/fs/cgroup on most
// Kubernetes nodes but at /sys/fs/cgroup/unified on hybrid hosts.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace nodemesh {

// Finds the cgroup2 mount point in a /proc/mounts-formatted text.
Result<std::string> findCgroup2Mount(std::string_view procMounts);
// Same, reading /proc/mounts.
Result<std::string> discoverCgroup2Mount();

// True if path is a mounted bpffs.
bool isBpffs(const std::string& path);
// Mounts bpffs at path when nothing is mounted there yet (hosts do not
// always mount it at boot).
Status ensureBpffs(const std::string& path);

// Reads a whole small file (procfs, sysfs, config).
Result<std::string> readFile(const std::string& path);

}  // namespace nodemesh
