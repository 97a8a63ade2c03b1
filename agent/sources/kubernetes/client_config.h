// How to reach the API server: in-cluster (service-account token and CA,
// KUBERNETES_SERVICE_HOST/PORT) or a kubeconfig file (the common subset:
// current-context -> cluster server, certificate-authority(-data),
// insecure-skip-tls-verify; user token(-File), client-certificate(-data),
// client-key(-data)). exec and auth-provider plugins are refused by name.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace nodemesh::kube {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ClientConfig {
  std::string server;     // "https://host:port"; "http://" is accepted (tests, kubectl proxy)
  std::string caPem;      // empty: the system trust store
  std::string token;      // bearer token, when tokenFile is empty
  std::string tokenFile;  // re-read before every request (bound tokens are rotated by the kubelet)
  std::string clientCertPem;
  std::string clientKeyPem;
  bool insecureSkipTlsVerify = false;
  std::string origin;  // "in-cluster" or the kubeconfig path and context, for logs
};

// In-cluster config from `saDir`/{token,ca.crt} and the given host and port
// (the values of KUBERNETES_SERVICE_HOST/PORT). IPv6 hosts are bracketed.
Result<ClientConfig> inClusterConfig(const std::string& saDir, const std::string& host, const std::string& port);
// Same, reading KUBERNETES_SERVICE_HOST/PORT from the environment.
Result<ClientConfig> inClusterConfigFromEnvironment(const std::string& saDir = kServiceAccountDir);

// Parses kubeconfig text; relative file paths resolve against `path`'s
// directory. Errors read "<path>: <field>: <problem>".
Result<ClientConfig> parseKubeconfig(std::string_view text, const std::string& path);
Result<ClientConfig> loadKubeconfig(const std::string& path);

// RFC 4648 base64 (the *-data fields); whitespace is ignored.
Result<std::string> decodeBase64(std::string_view text);

}  // namespace nodemesh::kube
