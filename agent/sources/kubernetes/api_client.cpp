#include "sources/kubernetes/api_client.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/system_paths.h"
#include "sources/kubernetes/curl_library.h"

namespace nodemesh::kube {
namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;
constexpr long kConnectTimeoutSeconds = 10;

// Only reached once curlLibrary() loaded: the API calls below check it first.
const CurlLibrary& curl() { return *curlLibrary().value(); }

struct CurlDeleter {
  void operator()(CURL* c) const { curl().easyCleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl().slistFreeAll(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Transfer {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* onData = nullptr;  // streaming, else buffer
  std::string body;
  std::string errorBody;
  const std::atomic<bool>* stop = nullptr;
  bool aborted = false;
};

size_t writeCallback(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  const size_t n = size * nmemb;
  if (t->onData == nullptr) {
    t->body.append(ptr, n);
    return n;
  }
  long status = 0;
  curl().easyGetinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    if (t->errorBody.size() < kMaxErrorBody) t->errorBody.append(ptr, std::min(n, kMaxErrorBody - t->errorBody.size()));
    return n;
  }
  if (!(*t->onData)(std::string_view(ptr, n))) {
    t->aborted = true;
    return CURL_WRITEFUNC_ERROR;
  }
  return n;
}

int progressCallback(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  if (t->stop != nullptr && t->stop->load()) {
    t->aborted = true;
    return 1;
  }
  return 0;
}

// Sets up the handle for one GET; the header list must outlive the transfer.
Result<SlistPtr> prepare(CURL* c, const ClientConfig& cfg, const std::string& url, std::chrono::seconds timeout,
                         Transfer& t) {
  curl().easySetopt(c, CURLOPT_URL, url.c_str());
  curl().easySetopt(c, CURLOPT_NOSIGNAL, 1L);
  curl().easySetopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl().easySetopt(c, CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  curl().easySetopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl().easySetopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl().easySetopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl().easySetopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the server offers it
  curl().easySetopt(c, CURLOPT_WRITEFUNCTION, writeCallback);
  curl().easySetopt(c, CURLOPT_WRITEDATA, &t);
  curl().easySetopt(c, CURLOPT_NOPROGRESS, 0L);
  curl().easySetopt(c, CURLOPT_XFERINFOFUNCTION, progressCallback);
  curl().easySetopt(c, CURLOPT_XFERINFODATA, &t);
  curl().easySetopt(c, CURLOPT_USERAGENT, "nodemesh-agent");

  curl().easySetopt(c, CURLOPT_SSL_VERIFYPEER, cfg.insecureSkipTlsVerify ? 0L : 1L);
  curl().easySetopt(c, CURLOPT_SSL_VERIFYHOST, cfg.insecureSkipTlsVerify ? 0L : 2L);
  // The blobs are copied by libcurl (CURL_BLOB_COPY).
  if (!cfg.caPem.empty()) {
    curl_blob blob{const_cast<char*>(cfg.caPem.data()), cfg.caPem.size(), CURL_BLOB_COPY};
    curl().easySetopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!cfg.clientCertPem.empty()) {
    curl_blob cert{const_cast<char*>(cfg.clientCertPem.data()), cfg.clientCertPem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(cfg.clientKeyPem.data()), cfg.clientKeyPem.size(), CURL_BLOB_COPY};
    curl().easySetopt(c, CURLOPT_SSLCERT_BLOB, &cert);
    curl().easySetopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl().easySetopt(c, CURLOPT_SSLKEY_BLOB, &key);
    curl().easySetopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }

  std::string token = cfg.token;
  if (!cfg.tokenFile.empty()) {
    auto text = readFile(cfg.tokenFile);
    if (!text) return text.error().wrap("bearer token");
    token = *text;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
  }
  curl_slist* headers = curl().slistAppend(nullptr, "Accept: application/json");
  if (!token.empty()) headers = curl().slistAppend(headers, ("Authorization: Bearer " + token).c_str());
  curl().easySetopt(c, CURLOPT_HTTPHEADER, headers);
  return SlistPtr(headers);
}

}  // namespace

ApiClient::ApiClient(ClientConfig config) : config_(std::move(config)) {}

Result<HttpResponse> ApiClient::get(const std::string& pathAndQuery, std::chrono::seconds timeout,
                                    const std::atomic<bool>* stop) const {
  if (!curlLibrary()) return curlLibrary().error();
  CurlPtr c(curl().easyInit());
  if (!c) return Error{"libcurl: cannot create a handle", 0};
  Transfer t;
  t.curl = c.get();
  t.stop = stop;
  const std::string url = config_.server + pathAndQuery;
  auto headers = prepare(c.get(), config_, url, timeout, t);
  if (!headers) return headers.error();
  CURLcode rc = curl().easyPerform(c.get());
  if (rc != CURLE_OK) return Error{"GET " + url + ": " + curl().easyStrerror(rc), 0};
  HttpResponse r;
  curl().easyGetinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
  r.body = std::move(t.body);
  return r;
}

Result<StreamEnd> ApiClient::stream(const std::string& pathAndQuery, std::chrono::seconds timeout,
                                    const std::function<bool(std::string_view)>& onData,
                                    const std::atomic<bool>* stop) const {
  if (!curlLibrary()) return curlLibrary().error();
  CurlPtr c(curl().easyInit());
  if (!c) return Error{"libcurl: cannot create a handle", 0};
  Transfer t;
  t.curl = c.get();
  t.onData = &onData;
  t.stop = stop;
  const std::string url = config_.server + pathAndQuery;
  auto headers = prepare(c.get(), config_, url, timeout, t);
  if (!headers) return headers.error();
  CURLcode rc = curl().easyPerform(c.get());
  StreamEnd end;
  curl().easyGetinfo(c.get(), CURLINFO_RESPONSE_CODE, &end.status);
  end.errorBody = std::move(t.errorBody);
  end.aborted = t.aborted;
  end.clean = rc == CURLE_OK;
  if (rc != CURLE_OK) end.transportError = "GET " + url + ": " + curl().easyStrerror(rc);
  return end;
}

std::string urlEncode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

}  // namespace nodemesh::kube
