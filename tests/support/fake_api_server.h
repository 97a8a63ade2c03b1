// A fake Kubernetes API server for tests: HTTP/1.1 on 127.0.0.1:0 that
// answers list requests with canned bodies (the fixtures under
// tests/fixtures/kubernetes) and watch requests with chunked streams of
// newline-delimited events, as the real API server does. Tests script it:
// canned watch replies (HTTP 410, streams that break off) and a live watch
// the test writes events into or drops. Used by the unit tests of the
// Kubernetes source and by the kernel tests that run the real agent.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace nodemesh::testing {

// The text of tests/fixtures/kubernetes/<name>, and its non-empty lines.
std::string kubeFixtureText(const std::string& name);
std::vector<std::string> kubeFixtureLines(const std::string& name);

class FakeApiServer {
 public:
  struct Reply {
    int status = 200;
    std::string body;                // non-200 replies
    std::vector<std::string> lines;  // watch events, one chunk each
    bool drop = false;               // close without the final chunk: a broken stream
  };

  FakeApiServer();
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Resources are named by the last path segment: "services",
  // "endpointslices", "namespaces", "pods", "nodes".
  void setList(const std::string& resource, std::string body, int status = 200);
  // Served once, before the sticky list reply.
  void queueList(const std::string& resource, std::string body, int status = 200);
  void queueWatch(const std::string& resource, Reply r);
  // Writes one event into the open (held) watch of resource.
  bool send(const std::string& resource, const std::string& line);
  // Breaks the open watch of resource off (no final chunk).
  void drop(const std::string& resource);
  // True while a watch of resource is held open and at least watchRequests were made.
  bool watching(const std::string& resource, unsigned watchRequests);
  std::vector<std::string> requests(const std::string& resource);  // query strings, in order
  unsigned count(const std::string& resource, bool watch);

 private:
  struct Live {
    int fd;
    bool dropRequested = false;
  };

  unsigned countLocked(const std::string& resource, bool watch);
  void acceptLoop();
  void serve(UniqueFd fd);

  UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::map<std::string, Reply> lists_;
  std::map<std::string, std::deque<Reply>> listQueue_;
  std::map<std::string, std::deque<Reply>> watchQueue_;
  std::map<std::string, Live> live_;
  std::map<std::string, std::vector<std::string>> requests_;
};

}  // namespace nodemesh::testing
