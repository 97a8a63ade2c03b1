#include "admin/admin_server.h"

#include <spdlog/spdlog.h>

#include "admin/peer_access.h"

namespace nodemesh::admin {

Result<std::unique_ptr<AdminServer>> AdminServer::start(const std::string& socketPath, Handler handler,
                                                        AdminServerOptions options) {
  if (!handler) return Error{"admin server needs a request handler", EINVAL};
  auto listen = openListenSocket(socketPath);
  if (!listen) return listen.error().wrap("starting admin API");

  UniqueFd fd = std::move(listen->fd);
  // From here on the destructor unlinks the socket file, whatever fails.
  std::unique_ptr<AdminServer> admin(new AdminServer(socketPath, std::move(*listen)));
  HttpServerOptions http{.name = "admin API",
                         .clientTimeout = options.clientTimeout,
                         .version = HttpVersion::k10,
                         .admit = [also = options.alsoAllowUid](int conn) {
                           const bool ok = peerAllowed(peerUid(conn), also);
                           if (!ok) spdlog::warn("admin API: refusing a non-root client");
                           return ok;
                         }};
  auto server = HttpServer::start(std::move(fd), std::move(handler), std::move(http));
  if (!server) return server.error().wrap("starting admin API");
  admin->server_ = std::move(*server);
  spdlog::info("admin API listening on {}", socketPath);
  return admin;
}

AdminServer::~AdminServer() {
  server_.reset();  // stop serving before the socket file goes
  unlinkIfOurs(path_, identity_);
}

}  // namespace nodemesh::admin
