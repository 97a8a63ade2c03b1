#include "admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "http_response.h"

namespace nodemesh::cli {
namespace {

using Clock = std::chrono::steady_clock;

// A sane status or services answer is far smaller; the cap only keeps a
// misbehaving peer from exhausting memory.
constexpr std::size_t kMaxAnswer = 64 * 1024 * 1024;

std::string seconds(std::chrono::milliseconds t) {
  const auto ms = t.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

Result<UniqueFd> connectTo(const std::string& socketPath, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath.empty() || socketPath.size() >= sizeof(addr.sun_path)) {
    return Error{connectErrorMessage(socketPath, ENAMETOOLONG), ENAMETOOLONG};
  }
  std::memcpy(addr.sun_path, socketPath.data(), socketPath.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("creating a socket");
  // For AF_UNIX, a blocking connect to a listener with a full backlog waits
  // up to SO_SNDTIMEO, which also bounds sending the request.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    return Error{connectErrorMessage(socketPath, err), err};
  }
  return fd;
}

Status sendAll(int fd, std::string_view data, const std::string& socketPath) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("sending the request to the nodemesh agent at " + socketPath);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<std::string> readToEof(int fd, Clock::time_point deadline, std::chrono::milliseconds timeout,
                              const std::string& socketPath) {
  std::string raw;
  char buf[16 * 1024];
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    const int ready = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Error::sys("waiting for the nodemesh agent's answer");
    if (ready == 0) {
      return Error{"the nodemesh agent at " + socketPath + " did not answer within " + seconds(timeout) +
                       " (it may be overloaded or hung; check its log)",
                   ETIMEDOUT};
    }
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      raw.append(buf, static_cast<std::size_t>(n));
      if (raw.size() > kMaxAnswer) return Error{"the nodemesh agent's answer is implausibly large", EMSGSIZE};
      continue;
    }
    if (n == 0) return raw;
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    // The agent closes right after answering; if it had not read all we
    // sent, the kernel reports ECONNRESET after the queued answer. The
    // answer is complete, so that is just the end.
    if (errno == ECONNRESET && !raw.empty()) return raw;
    return Error::sys("reading the nodemesh agent's answer");
  }
}

}  // namespace

std::string connectErrorMessage(const std::string& socketPath, int err) {
  switch (err) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
      return "cannot reach the nodemesh agent at " + socketPath + " (" + std::strerror(err) +
             "). Is the agent running? Start it with `nodemesh-agent --config FILE`, or on "
             "Kubernetes check `kubectl -n nodemesh get pods`.";
    case EACCES:
    case EPERM:
      return "permission denied on " + socketPath +
             ": the nodemesh admin API is root-only; run meshctl as root (e.g. with sudo).";
    case EAGAIN:
    case ETIMEDOUT:
      return "the nodemesh agent at " + socketPath +
             " did not accept the connection in time (it may be overloaded or hung; check its log).";
    case ENAMETOOLONG:
      return "the admin socket path '" + socketPath + "' is empty or too long for a UNIX socket.";
    default:
      return "cannot connect to the nodemesh agent at " + socketPath + ": " + std::strerror(err);
  }
}

Result<std::string> fetch(const std::string& socketPath, std::string_view apiPath,
                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto fd = connectTo(socketPath, timeout);
  if (!fd) return fd.error();

  const std::string request = "GET " + std::string(apiPath) + " HTTP/1.0\r\nHost: agent\r\n\r\n";
  if (auto st = sendAll(fd->get(), request, socketPath); !st) return st.error();

  auto raw = readToEof(fd->get(), deadline, timeout, socketPath);
  if (!raw) return raw.error();
  auto response = parseHttpResponse(*raw);
  if (!response) return response.error();
  if (response->status == 200) return std::move(response->body);

  std::string message = describeHttpError(*response);
  if (response->status == 403) message += "; run meshctl as root (e.g. with sudo)";
  return Error{"the nodemesh agent refused the request: " + message, 0};
}

}  // namespace nodemesh::cli
