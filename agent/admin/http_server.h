// The poll loop both agent HTTP servers share: one thread multiplexes every
// client of one listening socket with poll(2); each client is a
// ClientConnection bounded by deadlines and by the head limit, and at most
// maxClients are open at once (the rest wait in the kernel backlog).
// AdminServer (root-only UNIX socket) and the metrics/health listener (TCP,
// see tcp_listen.h) are this loop with a different socket and access rule.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "admin/client_connection.h"
#include "admin/http_message.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace nodemesh::admin {

struct HttpServerOptions {
  std::string name = "admin API";  // in log lines
  // How long a client may take to send its request head, and again to read
  // the answer; past it the connection is closed.
  std::chrono::milliseconds clientTimeout{2000};
  HttpVersion version = HttpVersion::k10;
  std::size_t maxClients = 64;
  // Decides at accept time whether a connection may be answered (else 403);
  // empty: everyone may.
  std::function<bool(int connFd)> admit;
};

class HttpServer {
 public:
  // listenFd: bound, listening, non-blocking. Starts the server thread;
  // handler is called from it, one request at a time.
  static Result<std::unique_ptr<HttpServer>> start(UniqueFd listenFd, Handler handler, HttpServerOptions options);

  // Stops and joins the thread, closes every connection and the listen fd.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int listenFd() const { return listen_.get(); }

 private:
  HttpServer(UniqueFd listen, Handler handler, HttpServerOptions options, UniqueFd wake);
  void run() noexcept;
  void serve();

  UniqueFd listen_;
  Handler handler_;
  HttpServerOptions options_;
  UniqueFd wake_;  // eventfd: the destructor writes it to stop the thread
  std::thread thread_;
};

}  // namespace nodemesh::admin
