#include "common/system_paths.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <fstream>
#include <sstream>

namespace nodemesh {

Result<std::string> findCgroup2Mount(std::string_view procMounts) {
  std::istringstream in{std::string(procMounts)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string device, mountPoint, fsType;
    if (!(fields >> device >> mountPoint >> fsType)) continue;
    if (fsType == "cgroup2") return mountPoint;
  }
  return Error{"no cgroup2 filesystem in /proc/mounts: nodemesh needs cgroup v2 (unified or hybrid "
               "layout); check that the kernel has CONFIG_CGROUPS and that cgroup2 is mounted",
               ENOENT};
}

Result<std::string> discoverCgroup2Mount() {
  auto text = readFile("/proc/mounts");
  if (!text) return text.error();
  return findCgroup2Mount(*text);
}

bool isBpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

Status ensureBpffs(const std::string& path) {
  if (isBpffs(path)) return {};
  ::mkdir(path.c_str(), 0700);
  if (::mount("bpf", path.c_str(), "bpf", 0, "mode=0700") != 0)
    return Error::sys("mounting bpffs at " + path + " (pins need it; run as root with CAP_SYS_ADMIN)");
  return {};
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::sys("reading " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error::sys("reading " + path);
  return ss.str();
}

}  // namespace nodemesh
