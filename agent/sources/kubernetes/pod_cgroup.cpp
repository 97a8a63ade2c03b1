#include "sources/kubernetes/pod_cgroup.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace nodemesh::kube {
namespace {

bool isDir(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec);
}

// "" for Guaranteed pods (they sit directly under the kubepods root).
std::string qosSegment(const std::string& qosClass) {
  if (qosClass == "Burstable") return "burstable";
  if (qosClass == "BestEffort") return "besteffort";
  return "";
}

}  // namespace

const char* toString(CgroupDriver d) {
  return d == CgroupDriver::kSystemd ? "systemd" : "cgroupfs";
}

std::string kubepodsRoot(CgroupDriver d) {
  return d == CgroupDriver::kSystemd ? "/kubepods.slice" : "/kubepods";
}

std::string podCgroupPath(CgroupDriver d, const std::string& podUid, const std::string& qosClass) {
  const std::string qos = qosSegment(qosClass);
  if (d == CgroupDriver::kCgroupfs) return "/kubepods" + (qos.empty() ? "" : "/" + qos) + "/pod" + podUid;
  // systemd escapes '-' (a hierarchy separator in slice names) as '_'.
  std::string uid = podUid;
  std::replace(uid.begin(), uid.end(), '-', '_');
  if (qos.empty()) return "/kubepods.slice/kubepods-pod" + uid + ".slice";
  return "/kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" + uid + ".slice";
}

std::optional<CgroupDriver> detectCgroupDriver(const std::string& mountRoot) {
  if (isDir(mountRoot + kubepodsRoot(CgroupDriver::kSystemd))) return CgroupDriver::kSystemd;
  if (isDir(mountRoot + kubepodsRoot(CgroupDriver::kCgroupfs))) return CgroupDriver::kCgroupfs;
  return std::nullopt;
}

std::optional<std::string> findPodCgroup(const std::string& mountRoot, const std::string& podUid,
                                         const std::string& qosClass, std::optional<CgroupDriver> preferred) {
  if (podUid.empty() || podUid.find('/') != std::string::npos || podUid.find("..") != std::string::npos)
    return std::nullopt;
  CgroupDriver first = preferred.value_or(detectCgroupDriver(mountRoot).value_or(CgroupDriver::kSystemd));
  CgroupDriver second = first == CgroupDriver::kSystemd ? CgroupDriver::kCgroupfs : CgroupDriver::kSystemd;
  std::vector<std::string> classes;
  if (qosClass.empty())
    classes = {"Guaranteed", "Burstable", "BestEffort"};
  else
    classes = {qosClass};
  for (CgroupDriver d : {first, second}) {
    for (const auto& qos : classes) {
      std::string rel = podCgroupPath(d, podUid, qos);
      if (isDir(mountRoot + rel)) return rel;
    }
  }
  return std::nullopt;
}

}  // namespace nodemesh::kube
