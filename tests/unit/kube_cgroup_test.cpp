// Pod -> cgroup discovery for both kubelet cgroup drivers and every QoS
// class, probing trees built in a temp dir.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "sources/kubernetes/pod_cgroup.h"

namespace nodemesh::kube {
namespace {

namespace fs = std::filesystem;

class KubeCgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nm-kube-cgroup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void mk(const std::string& rel) { fs::create_directories(root_ + rel); }
  std::string root_;
};

constexpr const char* kUid = "4f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2f31";

TEST_F(KubeCgroupTree, SystemdDriverAllQosClasses) {
  const std::string g = "/kubepods.slice/kubepods-pod4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31.slice";
  const std::string b =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31.slice";
  const std::string e =
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31.slice";
  EXPECT_EQ(podCgroupPath(CgroupDriver::kSystemd, kUid, "Guaranteed"), g);
  EXPECT_EQ(podCgroupPath(CgroupDriver::kSystemd, kUid, "Burstable"), b);
  EXPECT_EQ(podCgroupPath(CgroupDriver::kSystemd, kUid, "BestEffort"), e);
  mk("/kubepods.slice");
  EXPECT_EQ(detectCgroupDriver(root_), std::optional<CgroupDriver>(CgroupDriver::kSystemd));
  for (const auto& [qos, path] : {std::pair{"Guaranteed", g}, {"Burstable", b}, {"BestEffort", e}}) {
    EXPECT_EQ(findPodCgroup(root_, kUid, qos), std::nullopt) << qos;
    // A container scope below it, as containerd (cri-containerd-<id>.scope) creates it.
    mk(path + "/cri-containerd-0123abcd.scope");
    EXPECT_EQ(findPodCgroup(root_, kUid, qos), std::optional<std::string>(path)) << qos;
    fs::remove_all(root_ + path);
  }
}

TEST_F(KubeCgroupTree, CgroupfsDriverAllQosClasses) {
  const std::string g = std::string("/kubepods/pod") + kUid;
  const std::string b = std::string("/kubepods/burstable/pod") + kUid;
  const std::string e = std::string("/kubepods/besteffort/pod") + kUid;
  EXPECT_EQ(podCgroupPath(CgroupDriver::kCgroupfs, kUid, "Guaranteed"), g);
  EXPECT_EQ(podCgroupPath(CgroupDriver::kCgroupfs, kUid, "Burstable"), b);
  EXPECT_EQ(podCgroupPath(CgroupDriver::kCgroupfs, kUid, "BestEffort"), e);
  EXPECT_EQ(detectCgroupDriver(root_), std::nullopt);
  mk("/kubepods");
  EXPECT_EQ(detectCgroupDriver(root_), std::optional<CgroupDriver>(CgroupDriver::kCgroupfs));
  for (const auto& [qos, path] : {std::pair{"Guaranteed", g}, {"Burstable", b}, {"BestEffort", e}}) {
    EXPECT_EQ(findPodCgroup(root_, kUid, qos), std::nullopt) << qos;
    mk(path + "/0123abcd");  // CRI-O / containerd container id under cgroupfs
    EXPECT_EQ(findPodCgroup(root_, kUid, qos), std::optional<std::string>(path)) << qos;
    fs::remove_all(root_ + path);
  }
}

TEST_F(KubeCgroupTree, UnknownQosProbesEveryClassAndBothDrivers) {
  mk("/kubepods.slice");
  mk(std::string("/kubepods/besteffort/pod") + kUid);
  // Detected driver is systemd, but the pod is in the cgroupfs tree.
  EXPECT_EQ(findPodCgroup(root_, kUid, ""), std::optional<std::string>(std::string("/kubepods/besteffort/pod") + kUid));
}

TEST_F(KubeCgroupTree, HostileUidsNeverEscapeTheRoot) {
  mk("/kubepods/pod..");
  EXPECT_EQ(findPodCgroup(root_, "../x", "Guaranteed"), std::nullopt);
  EXPECT_EQ(findPodCgroup(root_, "..", "Guaranteed"), std::nullopt);
  EXPECT_EQ(findPodCgroup(root_, "", "Guaranteed"), std::nullopt);
}

}  // namespace
}  // namespace nodemesh::kube
