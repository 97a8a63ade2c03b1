#include "daemon/event_loop.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/unique_fd.h"

namespace nodemesh::daemon {
namespace {

sigset_t controlSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Bursts of writes (truncate + write + rename) settle for this long before
// one reload, so a half-written file is not read.
constexpr int kDebounceMs = 200;

}  // namespace

Status blockControlSignals() {
  sigset_t set = controlSignals();
  if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) return Error::sys("blocking signals", err);
  return {};
}

Status runEventLoop(const std::optional<std::string>& configPath, const LoopCallbacks& callbacks) {
  sigset_t set = controlSignals();
  UniqueFd sigFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigFd) return Error::sys("signalfd");

  UniqueFd watchFd;
  std::string watchedName;
  if (configPath) {
    std::filesystem::path p = std::filesystem::absolute(*configPath);
    watchedName = p.filename().string();
    watchFd.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!watchFd) return Error::sys("inotify_init1");
    const auto dir = p.parent_path().string();
    if (::inotify_add_watch(watchFd.get(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0)
      return Error::sys("watching " + dir + " for config changes");
  }

  bool pending = false;
  using Clock = std::chrono::steady_clock;
  auto nextTick = Clock::now() + callbacks.tickInterval;
  Clock::time_point reloadAt{};  // debounce: reload once the file was quiet this long
  while (true) {
    pollfd fds[2] = {{sigFd.get(), POLLIN, 0}, {watchFd.get(), POLLIN, 0}};
    int timeout = -1;
    if (pending) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(reloadAt - Clock::now()).count();
      timeout = static_cast<int>(std::max<long long>(0, left));
    }
    if (callbacks.tick) {
      const auto untilTick =
          std::chrono::duration_cast<std::chrono::milliseconds>(nextTick - Clock::now()).count();
      const int t = static_cast<int>(std::max<long long>(0, untilTick));
      timeout = timeout < 0 ? t : std::min(timeout, t);
    }
    const int n = ::poll(fds, watchFd ? 2 : 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("poll in the control loop");
    }
    if (callbacks.tick && Clock::now() >= nextTick) {
      callbacks.tick();
      nextTick = Clock::now() + callbacks.tickInterval;
    }
    if (pending && Clock::now() >= reloadAt) {
      pending = false;
      spdlog::info("config file changed; reloading");
      callbacks.reload();
      continue;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (::read(sigFd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGHUP) {
          spdlog::info("SIGHUP: reload requested");
          callbacks.reload();
        } else {
          spdlog::info("signal {}: stopping; the datapath stays pinned and keeps serving", strsignal(si.ssi_signo));
          return {};
        }
      }
    }
    if (watchFd && (fds[1].revents & POLLIN)) {
      alignas(inotify_event) char buf[4096];
      ssize_t len;
      while ((len = ::read(watchFd.get(), buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          if (ev->len && watchedName == ev->name && !(ev->mask & IN_DELETE)) {
            pending = true;
            reloadAt = Clock::now() + std::chrono::milliseconds(kDebounceMs);
          }
          p += sizeof(inotify_event) + ev->len;
        }
      }
    }
  }
}

}  // namespace nodemesh::daemon
