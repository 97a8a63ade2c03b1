#include "admin/client_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <variant>

#include <spdlog/spdlog.h>

#include "admin/peer_access.h"

namespace nodemesh::admin {

ClientConnection::ClientConnection(UniqueFd fd, bool allowed, Clock::time_point deadline, HttpVersion version)
    : fd_(std::move(fd)), allowed_(allowed), version_(version), deadline_(deadline) {}

short ClientConnection::pollEvents() const {
  switch (phase_) {
    case Phase::kReading: return POLLIN;
    case Phase::kWriting: return POLLOUT;
    case Phase::kDone: return 0;
  }
  return 0;
}

void ClientConnection::onEvents(short revents, const Handler& handler, std::chrono::milliseconds timeout) {
  if (phase_ == Phase::kReading && (revents & (POLLIN | POLLHUP | POLLERR))) {
    // recv reports EOF or the error itself, after any data still queued.
    readAvailable(handler, timeout);
  } else if (phase_ == Phase::kWriting) {
    if (revents & POLLOUT) {
      writeAvailable();
    } else if (revents & (POLLHUP | POLLERR)) {
      phase_ = Phase::kDone;  // the client went away before reading the answer
    }
  }
}

void ClientConnection::onTimeout() {
  if (phase_ == Phase::kReading) {
    spdlog::debug("admin: client sent no complete request within the timeout");
    // Best effort only: one non-blocking send, then close regardless.
    const std::string wire = formatResponse(errorResponse(408, "request head not received in time"), version_);
    (void)::send(fd_.get(), wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } else if (phase_ == Phase::kWriting) {
    spdlog::debug("admin: client did not read its answer within the timeout");
  }
  phase_ = Phase::kDone;
}

void ClientConnection::readAvailable(const Handler& handler, std::chrono::milliseconds timeout) {
  char buf[2048];
  while (phase_ == Phase::kReading) {
    // Never buffer more than the head limit: the excess is the 431 case.
    const std::size_t room = kMaxRequestHead - in_.size();
    const ssize_t n = ::recv(fd_.get(), buf, std::min(room, sizeof(buf)), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) phase_ = Phase::kDone;
      return;
    }
    if (n == 0) {  // closed before a complete head: nobody to answer
      phase_ = Phase::kDone;
      return;
    }
    // Only the newly read bytes (plus 3 before them) can complete the
    // terminator, so a trickling client costs linear, not quadratic, work.
    const std::size_t searchFrom = in_.size() >= 3 ? in_.size() - 3 : 0;
    in_.append(buf, static_cast<std::size_t>(n));
    const std::size_t end = findHeadEnd(std::string_view(in_).substr(searchFrom));
    if (end != std::string_view::npos) {
      respond(answer(std::string_view(in_).substr(0, searchFrom + end), handler), timeout);
    } else if (in_.size() >= kMaxRequestHead) {
      respond(errorResponse(431, "request head exceeds " + std::to_string(kMaxRequestHead) + " bytes"),
              timeout);
    }
  }
}

Response ClientConnection::answer(std::string_view head, const Handler& handler) const {
  if (!allowed_) return errorResponse(403, kRootOnlyMessage);
  auto parsed = parseRequestHead(head);
  if (auto* bad = std::get_if<Response>(&parsed)) return std::move(*bad);
  const auto& request = std::get<Request>(parsed);
  try {
    return handler(request.method, request.path);
  } catch (const std::exception& e) {
    spdlog::warn("admin: handler for {} {} failed: {}", request.method, request.path, e.what());
  } catch (...) {
    spdlog::warn("admin: handler for {} {} failed with an unknown exception", request.method, request.path);
  }
  return errorResponse(500, "internal error while answering the request");
}

void ClientConnection::respond(Response response, std::chrono::milliseconds timeout) {
  spdlog::debug("admin: answering {}", response.status);
  out_ = formatResponse(response, version_);
  in_.clear();
  phase_ = Phase::kWriting;
  deadline_ = Clock::now() + timeout;
  writeAvailable();
}

void ClientConnection::writeAvailable() {
  while (written_ < out_.size()) {
    // MSG_NOSIGNAL: a client that hangs up early must not SIGPIPE the agent.
    const ssize_t n = ::send(fd_.get(), out_.data() + written_, out_.size() - written_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) phase_ = Phase::kDone;
      return;
    }
    written_ += static_cast<std::size_t>(n);
  }
  phase_ = Phase::kDone;
}

}  // namespace nodemesh::admin
