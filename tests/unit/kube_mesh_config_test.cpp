// The Kubernetes source's mesh settings: the --mesh-config file (only the
// `mesh` section of the config format, same rules and messages) and how the
// agent wiring hands it to the source.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/config_loader.h"
#include "daemon/kube_wiring.h"

namespace nodemesh {
namespace {

TEST(KubeMeshConfig, ReadsTheMeshSection) {
  auto mesh = config::parseMeshConfig(
      "mesh:\n"
      "  trustDomain: prod.example.com\n"
      "  ca: {certFile: /etc/nodemesh/ca/ca.pem, keyFile: /etc/nodemesh/ca/ca-key.pem}\n"
      "  certificateTtlSeconds: 600\n"
      "  outboundPort: 15101\n"
      "  inboundPort: 15108\n"
      "  workers: 2\n"
      "  socketRedirect: true\n",
      "mesh.yaml");
  ASSERT_TRUE(mesh.ok()) << mesh.error().message;
  EXPECT_EQ(mesh->trustDomain, "prod.example.com");
  EXPECT_EQ(mesh->caCertFile, "/etc/nodemesh/ca/ca.pem");
  EXPECT_EQ(mesh->caKeyFile, "/etc/nodemesh/ca/ca-key.pem");
  EXPECT_EQ(mesh->certificateTtlSeconds, 600u);
  EXPECT_EQ(mesh->outboundPort, 15101);
  EXPECT_EQ(mesh->inboundPort, 15108);
  EXPECT_EQ(mesh->workers, 2u);
  EXPECT_TRUE(mesh->socketRedirect);
}

TEST(KubeMeshConfig, AbsentOrNullMeshMeansDefaults) {
  for (const char* text : {"mesh:\n", "mesh: ~\n", "{}\n"}) {
    auto mesh = config::parseMeshConfig(text, "mesh.yaml");
    ASSERT_TRUE(mesh.ok()) << text << ": " << mesh.error().message;
    EXPECT_EQ(mesh->trustDomain, "cluster.local");
    EXPECT_TRUE(mesh->caCertFile.empty());
    EXPECT_EQ(mesh->outboundPort, 15001);
    EXPECT_EQ(mesh->inboundPort, 15008);
  }
}

TEST(KubeMeshConfig, ErrorsAreTheConfigFileOnes) {
  auto r = config::parseMeshConfig("mesh:\n  trustDomian: x\n", "mesh.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("mesh.yaml:2:3: mesh.trustDomian: unknown field 'trustDomian'; did you mean "
                                   "'trustDomain'?"),
            std::string::npos)
      << r.error().message;
  r = config::parseMeshConfig("mesh:\n  inboundPort: 15001\n", "mesh.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("inboundPort and outboundPort must differ"), std::string::npos) << r.error().message;
  r = config::parseMeshConfig("mesh:\n  ca: {certFile: /ca.pem}\n", "mesh.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("keyFile: is required when certFile is given"), std::string::npos)
      << r.error().message;
  // Only the mesh section: the rest of a config comes from the cluster.
  r = config::parseMeshConfig("node: {name: a, cgroup: /}\nmesh: {}\n", "mesh.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("mesh.yaml:1:1: node: unknown field 'node'"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(config::parseMeshConfig("", "mesh.yaml").ok());
  EXPECT_FALSE(config::parseMeshConfig("mesh: {}\n---\nmesh: {}\n", "mesh.yaml").ok());
  auto missing = config::loadMeshConfigFile("/nonexistent/mesh.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/mesh.yaml"), std::string::npos);
}

class KubeWiringMesh : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nm-kube-mesh-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    flags_.kubeconfig = write("kubeconfig",
                              "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "
                              "\"http://127.0.0.1:1\"}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n"
                              "  context: {cluster: c, user: u}\ncurrent-context: x\n");
    flags_.nodeName = "node-a";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
  daemon::KubeFlags flags_;
};

TEST_F(KubeWiringMesh, TheFileReachesTheSourceOptions) {
  auto w = daemon::kubeWiring(flags_, "/sys/fs/cgroup");
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->options.mesh.trustDomain, "cluster.local");  // no flag: the defaults

  flags_.meshConfig = write("mesh.yaml", "mesh:\n  trustDomain: kube.example\n  inboundPort: 15108\n");
  w = daemon::kubeWiring(flags_, "/sys/fs/cgroup");
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->options.mesh.trustDomain, "kube.example");
  EXPECT_EQ(w->options.mesh.inboundPort, 15108);
}

TEST_F(KubeWiringMesh, ABadFileStopsTheStartNamingTheFlagAndField) {
  flags_.meshConfig = write("mesh.yaml", "mesh:\n  trustDomain: Not_Valid!\n");
  auto w = daemon::kubeWiring(flags_, "/sys/fs/cgroup");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().message.rfind("--mesh-config: " + flags_.meshConfig + ":2:16: mesh.trustDomain: ", 0), 0u)
      << w.error().message;
}

}  // namespace
}  // namespace nodemesh
