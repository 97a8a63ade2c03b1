// One accepted admin connection, driven by the server's poll loop: read the
// request head without blocking, answer it once, write the answer without
// blocking, close. Every step is bounded by a deadline so a silent or
// trickling client cannot hold the single server thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "admin/http_message.h"
#include "common/unique_fd.h"

namespace nodemesh::admin {

using Handler = std::function<Response(std::string_view method, std::string_view path)>;
using Clock = std::chrono::steady_clock;

class ClientConnection {
 public:
  // allowed: the access decision made at accept time (SO_PEERCRED on the
  // admin socket; always true on the metrics listener).
  // version: what the status lines say (1.0 admin, 1.1 metrics/health).
  ClientConnection(UniqueFd fd, bool allowed, Clock::time_point deadline,
                   HttpVersion version = HttpVersion::k10);

  int fd() const { return fd_.get(); }
  bool done() const { return phase_ == Phase::kDone; }
  Clock::time_point deadline() const { return deadline_; }
  short pollEvents() const;  // POLLIN while reading, POLLOUT while writing

  // Called when poll reports activity; revents as poll returned them.
  // timeout: how long the write phase may take once the answer is ready.
  void onEvents(short revents, const Handler& handler, std::chrono::milliseconds timeout);
  // Called when the deadline has passed; answers 408 if still reading.
  void onTimeout();

 private:
  enum class Phase { kReading, kWriting, kDone };

  void readAvailable(const Handler& handler, std::chrono::milliseconds timeout);
  void respond(Response response, std::chrono::milliseconds timeout);
  Response answer(std::string_view head, const Handler& handler) const;
  void writeAvailable();

  UniqueFd fd_;
  bool allowed_;
  HttpVersion version_;
  Clock::time_point deadline_;
  Phase phase_ = Phase::kReading;
  std::string in_;
  std::string out_;
  std::size_t written_ = 0;
};

}  // namespace nodemesh::admin
