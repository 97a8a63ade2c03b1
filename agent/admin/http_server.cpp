#include "admin/http_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

namespace nodemesh::admin {
namespace {

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

Result<std::unique_ptr<HttpServer>> HttpServer::start(UniqueFd listenFd, Handler handler, HttpServerOptions options) {
  if (!handler) return Error{options.name + " needs a request handler", EINVAL};
  if (!listenFd) return Error{options.name + " needs a listening socket", EBADF};
  if (options.maxClients == 0) options.maxClients = 1;
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake) return Error::sys("creating " + options.name + " wake eventfd");
  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(listenFd), std::move(handler), std::move(options), std::move(wake)));
  try {
    server->thread_ = std::thread([s = server.get()] { s->run(); });
  } catch (const std::system_error& e) {
    return Error{"starting " + server->options_.name + " thread: " + e.what(), e.code().value()};
  }
  return server;
}

HttpServer::HttpServer(UniqueFd listen, Handler handler, HttpServerOptions options, UniqueFd wake)
    : listen_(std::move(listen)), handler_(std::move(handler)), options_(std::move(options)), wake_(std::move(wake)) {}

HttpServer::~HttpServer() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    // eventfd writes of 8 bytes cannot be partial; failure would only mean
    // the counter is saturated, which also wakes the thread.
    (void)!::write(wake_.get(), &one, sizeof(one));
    thread_.join();
  }
}

void HttpServer::run() noexcept {
  // The server must outlive anything one request can do to it (e.g.
  // bad_alloc): drop the current connections and serve again, pausing so a
  // persistent failure does not spin.
  for (;;) {
    try {
      serve();
      return;  // stop requested
    } catch (const std::exception& e) {
      spdlog::error("{}: restarting after error: {}", options_.name, e.what());
    } catch (...) {
      spdlog::error("{}: restarting after an unknown exception", options_.name);
    }
    pollfd wake{wake_.get(), POLLIN, 0};
    if (::poll(&wake, 1, static_cast<int>(kRestartPause.count())) != 0 && (wake.revents & POLLIN)) return;
  }
}

void HttpServer::serve() {
  std::vector<ClientConnection> clients;
  std::vector<pollfd> fds;
  Clock::time_point acceptPausedUntil{};
  const std::size_t maxClients = options_.maxClients;

  for (;;) {
    const auto now = Clock::now();
    const bool acceptOpen = clients.size() < maxClients && now >= acceptPausedUntil;
    Clock::time_point next = acceptOpen ? Clock::time_point::max() : acceptPausedUntil;
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({acceptOpen ? listen_.get() : -1, POLLIN, 0});  // fd -1: ignored by poll
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
      while (clients.size() < maxClients) {
        UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!conn) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            spdlog::warn("{}: cannot accept: {}", options_.name, std::strerror(errno));
            acceptPausedUntil = Clock::now() + kAcceptBackoff;
          }
          break;  // EAGAIN, or a client that gave up (ECONNABORTED): nothing to do
        }
        const bool allowed = !options_.admit || options_.admit(conn.get());
        clients.emplace_back(std::move(conn), allowed, Clock::now() + options_.clientTimeout, options_.version);
      }
    }
  }
}

}  // namespace nodemesh::admin
