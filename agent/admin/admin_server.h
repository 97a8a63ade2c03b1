// The agent's admin API server: HTTP/1.0 over a root-only UNIX socket,
// served by one thread that multiplexes all clients with poll(2) (the
// HttpServer loop). See docs/ADMIN-API.md for the protocol.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "admin/client_connection.h"
#include "admin/http_message.h"
#include "admin/http_server.h"
#include "admin/listen_socket.h"
#include "common/result.h"

namespace nodemesh::admin {

struct AdminServerOptions {
  // How long a client may take to send its request head, and again to read
  // the answer; past it the connection is closed.
  std::chrono::milliseconds clientTimeout{2000};
  // Besides root, also admit this uid. Only for tests that run unprivileged;
  // the agent leaves it unset.
  std::optional<uid_t> alsoAllowUid;
};

class AdminServer {
 public:
  // Creates the parent directory (0700) if missing, replaces a stale socket
  // file, fails with "another agent is serving <path>" if a live agent
  // answers there, binds (mode 0600), listens and starts the server thread.
  // handler is called from the server thread, one request at a time.
  static Result<std::unique_ptr<AdminServer>> start(const std::string& socketPath, Handler handler,
                                                    AdminServerOptions options = {});

  // Stops and joins the thread, closes every connection, unlinks the socket.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  const std::string& socketPath() const { return path_; }

 private:
  AdminServer(std::string path, ListenSocket identity) : path_(std::move(path)), identity_(std::move(identity)) {}

  std::string path_;
  ListenSocket identity_;  // dev/ino of our socket file (its fd moved to server_)
  std::unique_ptr<HttpServer> server_;
};

}  // namespace nodemesh::admin
