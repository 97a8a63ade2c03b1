// Client configuration: in-cluster files and the kubeconfig subset.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "sources/kubernetes/client_config.h"

namespace nodemesh::kube {
namespace {

namespace fs = std::filesystem;

class KubeConfigDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nm-kube-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string dir_;
};

const char* kCa = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";

TEST(KubeBase64, DecodesAndRejects) {
  EXPECT_EQ(decodeBase64("aGVsbG8gd29ybGQ=").value(), "hello world");
  EXPECT_EQ(decodeBase64("aGVs\nbG8=").value(), "hello");
  EXPECT_FALSE(decodeBase64("a$b").ok());
  EXPECT_FALSE(decodeBase64("aGVsbG8=x").ok());
}

TEST_F(KubeConfigDir, InCluster) {
  write("token", "eyJhbGciOiJSUzI1NiJ9.payload.sig\n");
  write("ca.crt", kCa);
  auto c = inClusterConfig(dir_, "10.96.0.1", "443");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->caPem, kCa);
  EXPECT_EQ(c->tokenFile, dir_ + "/token");  // re-read per request: the kubelet rotates it
  EXPECT_FALSE(c->insecureSkipTlsVerify);
  EXPECT_EQ(inClusterConfig(dir_, "fd00::1", "6443").value().server, "https://[fd00::1]:6443");

  EXPECT_NE(inClusterConfig(dir_, "", "443").error().message.find("KUBERNETES_SERVICE_HOST"), std::string::npos);
  fs::remove(dir_ + "/ca.crt");
  auto noCa = inClusterConfig(dir_, "10.96.0.1", "443");
  ASSERT_FALSE(noCa.ok());
  EXPECT_NE(noCa.error().message.find(dir_ + "/ca.crt"), std::string::npos) << noCa.error().message;
}

TEST_F(KubeConfigDir, KubeconfigCurrentContextWithDataFields) {
  // base64 of "CA-PEM", "CERT-PEM", "KEY-PEM"
  std::string path = write("config", R"(apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: dev
  cluster: {server: "https://dev.example:6443"}
- name: prod
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: Q0EtUEVN
contexts:
- name: dev
  context: {cluster: dev, user: dev}
- name: prod
  context:
    cluster: prod
    user: admin
users:
- name: admin
  user:
    client-certificate-data: Q0VSVC1QRU0=
    client-key-data: S0VZLVBFTQ==
)");
  auto c = loadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");
  EXPECT_EQ(c->caPem, "CA-PEM");
  EXPECT_EQ(c->clientCertPem, "CERT-PEM");
  EXPECT_EQ(c->clientKeyPem, "KEY-PEM");
  EXPECT_EQ(c->origin, path + " (context prod)");
}

TEST_F(KubeConfigDir, KubeconfigFilesRelativeToIt) {
  write("ca.pem", kCa);
  std::string path = write("kc.yaml", R"(current-context: c
clusters: [{name: k, cluster: {server: "http://127.0.0.1:8001", certificate-authority: ca.pem, insecure-skip-tls-verify: true}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: abc123}}]
)");
  auto c = loadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->caPem, kCa);
  EXPECT_TRUE(c->insecureSkipTlsVerify);
  EXPECT_EQ(c->token, "abc123");
  EXPECT_EQ(c->server, "http://127.0.0.1:8001");
}

TEST(KubeKubeconfig, ErrorsNameTheFileAndField) {
  auto err = [](const std::string& text) { return parseKubeconfig(text, "/etc/kc").error().message; };
  EXPECT_EQ(err("current-context: x\ncontexts: []\n"), "/etc/kc: contexts: no context named \"x\" (current-context)");
  EXPECT_EQ(err("clusters: []\n"), "/etc/kc: current-context: is not set");
  EXPECT_EQ(err("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                "clusters: [{name: k, cluster: {server: \"ftp://x\"}}]\n"),
            "/etc/kc: clusters[k].cluster.server: must start with https:// or http://, got \"ftp://x\"");
  EXPECT_EQ(err("current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                "clusters: [{name: k, cluster: {server: \"https://x\", certificate-authority: missing.pem}}]\n"),
            "/etc/kc: clusters[k].cluster.certificate-authority: reading /etc/missing.pem: No such file or directory");
  EXPECT_EQ(err("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                "clusters: [{name: k, cluster: {server: \"https://x\"}}]\n"
                "users: [{name: u, user: {exec: {command: aws}}}]\n"),
            "/etc/kc: users[u].user.exec: credential plugins are not supported; use a token or client certificate");
  EXPECT_EQ(err("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                "clusters: [{name: k, cluster: {server: \"https://x\"}}]\n"
                "users: [{name: u, user: {client-certificate-data: Q0VSVC1QRU0=}}]\n"),
            "/etc/kc: users[u].user.client-key: is required with the other half of the client key pair");
  EXPECT_NE(err("{{{").find("/etc/kc: not valid YAML"), std::string::npos);
  EXPECT_NE(loadKubeconfig("/nonexistent/kc").error().message.find("/nonexistent/kc"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::kube
