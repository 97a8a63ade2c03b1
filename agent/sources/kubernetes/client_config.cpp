#include "sources/kubernetes/client_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/system_paths.h"

namespace nodemesh::kube {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

std::string resolve(const std::string& file, const std::string& kubeconfigPath) {
  std::filesystem::path p(file);
  if (p.is_absolute()) return file;
  return (std::filesystem::path(kubeconfigPath).parent_path() / p).string();
}

// Finds the entry `name` in a kubeconfig list (clusters, users, contexts).
std::optional<YAML::Node> named(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return std::nullopt;
  for (const auto& item : list) {
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name) return item;
  }
  return std::nullopt;
}

std::string scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap()) return {};
  YAML::Node v = map[key];
  return v && v.IsScalar() ? v.Scalar() : std::string();
}

}  // namespace

Result<std::string> decodeBase64(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = value(c);
    if (v < 0 || padding) return Error{"not valid base64", 0};
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return Error{"not valid base64 (truncated)", 0};
  return out;
}

Result<ClientConfig> inClusterConfig(const std::string& saDir, const std::string& host, const std::string& port) {
  if (host.empty() || port.empty())
    return Error{
        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (is the agent "
        "running in a pod?)",
        0};
  ClientConfig c;
  c.server = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  c.tokenFile = saDir + "/token";
  auto token = readFile(c.tokenFile);
  if (!token) return token.error().wrap("in-cluster config: service-account token");
  if (trimmed(*token).empty()) return Error{"in-cluster config: " + c.tokenFile + " is empty", 0};
  auto ca = readFile(saDir + "/ca.crt");
  if (!ca) return ca.error().wrap("in-cluster config: cluster CA");
  c.caPem = *ca;
  c.origin = "in-cluster (" + c.server + ")";
  return c;
}

Result<ClientConfig> inClusterConfigFromEnvironment(const std::string& saDir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  return inClusterConfig(saDir, host ? host : "", port ? port : "");
}

Result<ClientConfig> parseKubeconfig(std::string_view text, const std::string& path) {
  auto fail = [&](const std::string& what) { return Error{path + ": " + what, 0}; };
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return fail("not valid YAML: " + std::string(e.what()));
  }
  if (!root.IsMap()) return fail("not a kubeconfig (expected a mapping at the top)");
  try {
    std::string contextName = scalar(root, "current-context");
    if (contextName.empty()) return fail("current-context: is not set");
    auto context = named(root["contexts"], contextName);
    if (!context) return fail("contexts: no context named \"" + contextName + "\" (current-context)");
    YAML::Node ctx = (*context)["context"];
    std::string clusterName = scalar(ctx, "cluster");
    std::string userName = scalar(ctx, "user");
    if (clusterName.empty()) return fail("contexts[" + contextName + "].context.cluster: is required");
    auto clusterEntry = named(root["clusters"], clusterName);
    if (!clusterEntry) return fail("clusters: no cluster named \"" + clusterName + "\" (context " + contextName + ")");
    YAML::Node cluster = (*clusterEntry)["cluster"];
    const std::string cField = "clusters[" + clusterName + "].cluster.";

    ClientConfig c;
    c.origin = path + " (context " + contextName + ")";
    c.server = scalar(cluster, "server");
    if (c.server.empty()) return fail(cField + "server: is required");
    if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0)
      return fail(cField + "server: must start with https:// or http://, got \"" + c.server + "\"");
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    c.insecureSkipTlsVerify = scalar(cluster, "insecure-skip-tls-verify") == "true";
    if (std::string data = scalar(cluster, "certificate-authority-data"); !data.empty()) {
      auto pem = decodeBase64(data);
      if (!pem) return fail(cField + "certificate-authority-data: " + pem.error().message);
      c.caPem = *pem;
    } else if (std::string file = scalar(cluster, "certificate-authority"); !file.empty()) {
      auto pem = readFile(resolve(file, path));
      if (!pem) return fail(cField + "certificate-authority: " + pem.error().message);
      c.caPem = *pem;
    }

    if (!userName.empty()) {
      auto userEntry = named(root["users"], userName);
      if (!userEntry) return fail("users: no user named \"" + userName + "\" (context " + contextName + ")");
      YAML::Node user = (*userEntry)["user"];
      const std::string uField = "users[" + userName + "].user.";
      if (user && user.IsMap() && user["exec"])
        return fail(uField + "exec: credential plugins are not supported; use a token or client certificate");
      if (user && user.IsMap() && user["auth-provider"])
        return fail(uField + "auth-provider: is not supported; use a token or client certificate");
      c.token = scalar(user, "token");
      if (std::string file = scalar(user, "tokenFile"); !file.empty() && c.token.empty())
        c.tokenFile = resolve(file, path);
      auto pemField = [&](const char* dataKey, const char* fileKey, std::string& out) -> Status {
        if (std::string data = scalar(user, dataKey); !data.empty()) {
          auto pem = decodeBase64(data);
          if (!pem) return Error{path + ": " + uField + dataKey + ": " + pem.error().message, 0};
          out = *pem;
        } else if (std::string file = scalar(user, fileKey); !file.empty()) {
          auto pem = readFile(resolve(file, path));
          if (!pem) return Error{path + ": " + uField + fileKey + ": " + pem.error().message, pem.error().code};
          out = *pem;
        }
        return {};
      };
      if (auto st = pemField("client-certificate-data", "client-certificate", c.clientCertPem); !st) return st.error();
      if (auto st = pemField("client-key-data", "client-key", c.clientKeyPem); !st) return st.error();
      if (c.clientCertPem.empty() != c.clientKeyPem.empty())
        return fail(uField + (c.clientCertPem.empty() ? "client-certificate" : "client-key") +
                    ": is required with the other half of the client key pair");
    }
    return c;
  } catch (const YAML::Exception& e) {
    return fail(std::string("unexpected structure: ") + e.what());
  }
}

Result<ClientConfig> loadKubeconfig(const std::string& path) {
  auto text = readFile(path);
  if (!text) return text.error().wrap("kubeconfig " + path);
  return parseKubeconfig(*text, path);
}

}  // namespace nodemesh::kube
