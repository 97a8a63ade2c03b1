#include "admin/admin_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <exception>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "admin/peer_access.h"

namespace nodemesh::admin {
namespace {

// Beyond this many open connections the listen socket is left unpolled, so
// excess clients wait in the kernel backlog instead of costing memory.
constexpr std::size_t kMaxClients = 64;
// After EMFILE/ENFILE the listen fd stays readable; back off instead of
// spinning on it.
constexpr std::chrono::milliseconds kAcceptBackoff{100};
constexpr std::chrono::milliseconds kRestartPause{100};

int pollTimeoutMs(Clock::time_point now, Clock::time_point next) {
  if (next == Clock::time_point::max()) return -1;
  if (next <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

}  // namespace

Result<std::unique_ptr<AdminServer>> AdminServer::start(const std::string& socketPath, Handler handler,
                                                        AdminServerOptions options) {
  if (!handler) return Error{"admin server needs a request handler", EINVAL};
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) return Error::sys("creating admin server wake eventfd");
  auto listen = openListenSocket(socketPath);
  if (!listen) return listen.error().wrap("starting admin API");

  std::unique_ptr<AdminServer> server(new AdminServer(socketPath, std::move(handler), options,
                                                      std::move(listen.value()), std::move(wake)));
  try {
    server->thread_ = std::thread([s = server.get()] { s->run(); });
  } catch (const std::system_error& e) {
    // The destructor still unlinks the socket; there is no thread to join.
    return Error{std::string("starting admin API thread: ") + e.what(), e.code().value()};
  }
  spdlog::info("admin API listening on {}", socketPath);
  return server;
}

AdminServer::AdminServer(std::string path, Handler handler, AdminServerOptions options, ListenSocket listen,
                         UniqueFd wake)
    : path_(std::move(path)),
      handler_(std::move(handler)),
      options_(options),
      listen_(std::move(listen)),
      wake_(std::move(wake)) {}

AdminServer::~AdminServer() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    // eventfd writes of 8 bytes cannot be partial; failure would only mean
    // the counter is saturated, which also wakes the thread.
    (void)!::write(wake_.get(), &one, sizeof(one));
    thread_.join();
  }
  unlinkIfOurs(path_, listen_);
}

void AdminServer::run() noexcept {
  // The admin API must outlive anything one request can do to it (e.g.
  // bad_alloc): drop the current connections and serve again, pausing so a
  // persistent failure does not spin.
  for (;;) {
    try {
      serve();
      return;  // stop requested
    } catch (const std::exception& e) {
      spdlog::error("admin API: restarting after error: {}", e.what());
    } catch (...) {
      spdlog::error("admin API: restarting after an unknown exception");
    }
    pollfd wake{wake_.get(), POLLIN, 0};
    if (::poll(&wake, 1, static_cast<int>(kRestartPause.count())) != 0 && (wake.revents & POLLIN)) return;
  }
}

void AdminServer::serve() {
  std::vector<ClientConnection> clients;
  std::vector<pollfd> fds;
  Clock::time_point acceptPausedUntil{};

  for (;;) {
    const auto now = Clock::now();
    const bool acceptOpen = clients.size() < kMaxClients && now >= acceptPausedUntil;
    Clock::time_point next = acceptOpen ? Clock::time_point::max() : acceptPausedUntil;
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({acceptOpen ? listen_.fd.get() : -1, POLLIN, 0});  // fd -1: ignored by poll
    for (const auto& c : clients) {
      fds.push_back({c.fd(), c.pollEvents(), 0});
      next = std::min(next, c.deadline());
    }

    if (::poll(fds.data(), fds.size(), pollTimeoutMs(now, next)) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[0].revents) return;  // stop requested

    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (const short revents = fds[i + 2].revents) {
        clients[i].onEvents(revents, handler_, options_.clientTimeout);
      }
    }

    const auto after = Clock::now();
    for (auto& c : clients) {
      if (!c.done() && c.deadline() <= after) c.onTimeout();
    }
    std::erase_if(clients, [](const ClientConnection& c) { return c.done(); });

    if (fds[1].revents & POLLIN) {
      while (clients.size() < kMaxClients) {
        UniqueFd conn(::accept4(listen_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!conn) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            spdlog::warn("admin API: cannot accept: {}", std::strerror(errno));
            acceptPausedUntil = Clock::now() + kAcceptBackoff;
          }
          break;  // EAGAIN, or a client that gave up (ECONNABORTED): nothing to do
        }
        const bool allowed = peerAllowed(peerUid(conn.get()), options_.alsoAllowUid);
        if (!allowed) spdlog::warn("admin API: refusing a non-root client");
        clients.emplace_back(std::move(conn), allowed, Clock::now() + options_.clientTimeout);
      }
    }
  }
}

}  // namespace nodemesh::admin
