// HTTP GETs against the API server with libcurl: one easy handle per
// request, TLS verification on unless the config says otherwise, bearer
// token or client certificate, and a streaming variant for watches that
// hands body bytes over as they arrive and can be aborted from another thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "sources/kubernetes/client_config.h"

namespace nodemesh::kube {

struct HttpResponse {
  long status = 0;
  std::string body;
};

// How a stream ended: the HTTP status, the body when the status was not 200
// (a Kubernetes Status object), and whether the transfer ended cleanly (the
// server closed the stream after timeoutSeconds) or broke off.
struct StreamEnd {
  long status = 0;
  std::string errorBody;
  bool clean = false;
  bool aborted = false;        // the callback or stop flag ended it
  std::string transportError;  // libcurl's words when !clean
};

class ApiClient {
 public:
  explicit ApiClient(ClientConfig config);

  const ClientConfig& config() const { return config_; }

  // GET server+pathAndQuery; the whole body. Fails on transport errors only;
  // HTTP errors come back as a status.
  Result<HttpResponse> get(const std::string& pathAndQuery, std::chrono::seconds timeout,
                           const std::atomic<bool>* stop = nullptr) const;

  // GET with the body handed to onData as it arrives (status 200 only).
  // onData returning false, or *stop becoming true, aborts the transfer.
  // Fails only when the request could not be set up (token file unreadable).
  Result<StreamEnd> stream(const std::string& pathAndQuery, std::chrono::seconds timeout,
                           const std::function<bool(std::string_view)>& onData, const std::atomic<bool>* stop) const;

 private:
  ClientConfig config_;
};

// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view text);

}  // namespace nodemesh::kube
