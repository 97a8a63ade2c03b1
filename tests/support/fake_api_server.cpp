#include "fake_api_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace nodemesh::testing {
namespace {

bool writeAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

std::string chunk(const std::string& data) {
  std::ostringstream ss;
  ss << std::hex << data.size() << "\r\n" << data << "\r\n";
  return ss.str();
}

std::string response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Error") +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

std::string kubeFixtureText(const std::string& name) {
  std::ifstream in(std::filesystem::path(NM_KUBE_FIXTURE_DIR) / name);
  if (!in) throw std::runtime_error("missing fixture " + name + " in " NM_KUBE_FIXTURE_DIR);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> kubeFixtureLines(const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(kubeFixtureText(name));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

FakeApiServer::FakeApiServer() {
  listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_.get(), 64) != 0)
    std::abort();
  socklen_t len = sizeof addr;
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

FakeApiServer::~FakeApiServer() {
  stop_ = true;
  acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
}

void FakeApiServer::setList(const std::string& resource, std::string body, int status) {
  std::lock_guard lock(mu_);
  lists_[resource] = Reply{status, std::move(body), {}, false};
}

void FakeApiServer::queueList(const std::string& resource, std::string body, int status) {
  std::lock_guard lock(mu_);
  listQueue_[resource].push_back(Reply{status, std::move(body), {}, false});
}

void FakeApiServer::queueWatch(const std::string& resource, Reply r) {
  std::lock_guard lock(mu_);
  watchQueue_[resource].push_back(std::move(r));
}

bool FakeApiServer::send(const std::string& resource, const std::string& line) {
  std::lock_guard lock(mu_);
  auto it = live_.find(resource);
  return it != live_.end() && writeAll(it->second.fd, chunk(line + "\n"));
}

void FakeApiServer::drop(const std::string& resource) {
  std::lock_guard lock(mu_);
  auto it = live_.find(resource);
  if (it != live_.end()) it->second.dropRequested = true;
}

bool FakeApiServer::watching(const std::string& resource, unsigned watchRequests) {
  std::lock_guard lock(mu_);
  return live_.count(resource) != 0 && countLocked(resource, true) >= watchRequests;
}

std::vector<std::string> FakeApiServer::requests(const std::string& resource) {
  std::lock_guard lock(mu_);
  return requests_[resource];
}

unsigned FakeApiServer::count(const std::string& resource, bool watch) {
  std::lock_guard lock(mu_);
  return countLocked(resource, watch);
}

unsigned FakeApiServer::countLocked(const std::string& resource, bool watch) {
  unsigned n = 0;
  for (const auto& q : requests_[resource]) n += (q.find("watch=1") != std::string::npos) == watch;
  return n;
}

void FakeApiServer::acceptLoop() {
  while (!stop_) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    connections_.emplace_back([this, fd] { serve(UniqueFd(fd)); });
  }
}

void FakeApiServer::serve(UniqueFd fd) {
  std::string req;
  char buf[4096];
  while (req.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd.get(), POLLIN, 0};
    if (stop_) return;
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    req.append(buf, static_cast<std::size_t>(n));
  }
  // "GET /api/v1/pods?limit=500&fieldSelector=... HTTP/1.1"
  std::string target = req.substr(4, req.find(' ', 4) - 4);
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  std::string resource = path.substr(path.rfind('/') + 1);
  bool watch = query.find("watch=1") != std::string::npos;

  std::unique_lock lock(mu_);
  requests_[resource].push_back(query);
  if (!watch) {
    Reply r;
    if (auto& q = listQueue_[resource]; !q.empty()) {
      r = q.front();
      q.pop_front();
    } else if (lists_.count(resource)) {
      r = lists_[resource];
    } else {
      r = Reply{404, R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":404})", {}, false};
    }
    lock.unlock();
    writeAll(fd.get(), response(r.status, r.body));
    return;
  }
  static const std::string kStreamHead =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  if (auto& q = watchQueue_[resource]; !q.empty()) {
    Reply r = q.front();
    q.pop_front();
    lock.unlock();
    if (r.status != 200) {
      writeAll(fd.get(), response(r.status, r.body));
      return;
    }
    std::string out = kStreamHead;
    for (const auto& l : r.lines) out += chunk(l + "\n");
    if (!r.drop) out += "0\r\n\r\n";
    writeAll(fd.get(), out);
    return;
  }
  // No script: hold the watch open like an idle API server; the test
  // writes into it (send) or breaks it (drop).
  writeAll(fd.get(), kStreamHead);
  live_[resource] = Live{fd.get()};
  lock.unlock();
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, 10);
    bool clientGone = r > 0 && ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT) <= 0;
    std::lock_guard relock(mu_);
    if (clientGone || stop_ || live_[resource].dropRequested) {
      live_.erase(resource);
      return;  // fd closes without the terminating chunk
    }
  }
}

}  // namespace nodemesh::testing
