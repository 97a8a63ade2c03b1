#include "e2e_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/system_paths.h"

namespace fs = std::filesystem;

namespace nodemesh::e2e {
namespace {

using Clock = std::chrono::steady_clock;

long msLeft(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

std::string cgroupRootDir() {
  auto m = discoverCgroup2Mount();
  return m ? *m : "/sys/fs/cgroup";
}

std::string slurp(const std::string& path) {
  auto t = readFile(path);
  return t ? *t : "";
}

bool writeAll(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Everything a child needs, prepared before fork (the child must not allocate
// much: the parent may have threads).
struct ChildSetup {
  int nsFd = -1;
  std::string procsPath;
  char pidBuf[32] = {};
  int deathSig = SIGKILL;
  pid_t parent = ::getpid();

  explicit ChildSetup(const Placement& where, int sig = SIGKILL) : deathSig(sig) {
    if (!where.netns.empty()) {
      nsFd = ::open(("/run/netns/" + where.netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsFd < 0) throw std::runtime_error("open netns " + where.netns + ": " + std::strerror(errno));
    }
    if (!where.cgroupDir.empty()) procsPath = where.cgroupDir + "/cgroup.procs";
  }
  ~ChildSetup() {
    if (nsFd >= 0) ::close(nsFd);
  }
  // In the child, right after fork: dies with the test, joins the cgroup and the netns.
  void enter() {
    ::prctl(PR_SET_PDEATHSIG, deathSig);
    if (::getppid() != parent) ::_exit(126);  // the parent died between fork and prctl
    if (!procsPath.empty()) {
      int n = std::snprintf(pidBuf, sizeof pidBuf, "%d", ::getpid());
      int fd = ::open(procsPath.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, pidBuf, static_cast<std::size_t>(n)) != n) {
        static const char msg[] = "e2e child: cannot join cgroup\n";
        (void)!::write(2, msg, sizeof msg - 1);
        ::_exit(124);
      }
      ::close(fd);
    }
    if (nsFd >= 0 && ::setns(nsFd, CLONE_NEWNET) != 0) {
      static const char msg[] = "e2e child: setns failed\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(125);
    }
  }
};

int openLog(const std::string& path) {
  return ::open(path.empty() ? "/dev/null" : path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

int exitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Reads fd until EOF or the deadline; kills pid on timeout.
RunResult collect(pid_t pid, int outFd, int inFd, const std::string& stdinData, int timeoutSec) {
  RunResult r;
  auto deadline = Clock::now() + std::chrono::seconds(timeoutSec);
  std::size_t written = 0;
  if (inFd >= 0 && stdinData.empty()) {
    ::close(inFd);
    inFd = -1;
  }
  char buf[8192];
  while (outFd >= 0) {
    long left = msLeft(deadline);
    if (left <= 0) {
      r.timedOut = true;
      break;
    }
    pollfd p[2] = {{outFd, POLLIN, 0}, {inFd, POLLOUT, 0}};
    int n = ::poll(p, inFd >= 0 ? 2 : 1, static_cast<int>(std::min(left, 200L)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (inFd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(inFd, stdinData.data() + written, stdinData.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 || written == stdinData.size()) {
        ::close(inFd);
        inFd = -1;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t got = ::read(outFd, buf, sizeof buf);
      if (got > 0) {
        r.out.append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        break;
      }
    }
  }
  if (inFd >= 0) ::close(inFd);
  ::close(outFd);
  if (r.timedOut) ::kill(pid, SIGKILL);
  int status = 0;
  // After EOF the child is exiting; bound the wait anyway.
  auto reapDeadline = Clock::now() + std::chrono::seconds(5);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (msLeft(reapDeadline) <= 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      r.timedOut = true;
      break;
    }
    ::usleep(5000);
  }
  r.exitCode = exitCodeOf(status);
  return r;
}

using testing::fillAddr;

bool waitFd(int fd, short events, int ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, ms) > 0;
}

// Runs a command line (no shell), returns stdout+stderr; throws when it fails.
std::string must(const std::vector<std::string>& argv) {
  RunResult r = execIn({}, argv, 30);
  if (!r.ok()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("e2e setup: `" + cmd + "` failed (" + std::to_string(r.exitCode) + "): " + r.out);
  }
  return r.out;
}

std::vector<std::string> split(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

// Writes value to a /proc/sys file inside a netns (net.* sysctls are per netns).
void netnsSysctl(const std::string& netns, const std::string& path, const std::string& value) {
  RunResult r = runIn({netns, ""}, [&] {
    std::ofstream f(path);
    f << value << std::flush;
    return f ? std::string("ok") : std::string("ERR write " + path);
  });
  if (r.out != "ok") throw std::runtime_error("sysctl " + path + " in " + netns + ": " + r.out);
}

bool pidAlive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

std::vector<pid_t> cgroupPids(const std::string& dir) {
  std::vector<pid_t> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename() != "cgroup.procs") continue;
    std::istringstream in(slurp(it->path()));
    pid_t p;
    while (in >> p) out.push_back(p);
  }
  std::istringstream in(slurp(dir + "/cgroup.procs"));
  pid_t p;
  while (in >> p) out.push_back(p);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// rmdir a cgroup tree deepest first.
bool removeCgroupTree(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  std::vector<std::string> dirs;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  dirs.push_back(dir);
  bool ok = true;
  for (const auto& d : dirs) {
    for (int i = 0; i < 50; ++i) {  // a process that just died may still be leaving the cgroup
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      if (i == 49) ok = false;
      ::usleep(20 * 1000);
    }
  }
  return ok;
}

std::set<std::string> netnsList() {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) out.insert(e.path().filename());
  return out;
}

}  // namespace

// ---- Child -------------------------------------------------------------------

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    stop(SIGKILL, 0);
    pid_ = o.pid_;
    status_ = o.status_;
    logPath_ = std::move(o.logPath_);
    o.pid_ = -1;
  }
  return *this;
}

Child Child::spawn(const Placement& where, const std::function<int()>& body, const std::string& logPath) {
  ChildSetup setup(where);
  int log = openLog(logPath);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setup.enter();
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::_exit(body());
  }
  ::close(log);
  Child c;
  c.pid_ = pid;
  c.logPath_ = logPath;
  return c;
}

Child Child::exec(const Placement& where, const std::vector<std::string>& argv, const std::string& logPath,
                  int deathSig) {
  ChildSetup setup(where, deathSig);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int log = openLog(logPath);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setup.enter();
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(log);
  Child c;
  c.pid_ = pid;
  c.logPath_ = logPath;
  return c;
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return r == 0;
}

bool Child::wait(int timeoutMs) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  while (running()) {
    if (msLeft(deadline) <= 0) return false;
    ::usleep(10 * 1000);
  }
  return true;
}

int Child::stop(int sig, int graceMs) {
  if (pid_ <= 0) return status_;
  ::kill(pid_, sig);
  if (!wait(graceMs)) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = st;
    pid_ = -1;
  }
  return status_;
}

std::string Child::log() const { return logPath_.empty() ? "" : slurp(logPath_); }

// ---- running things in placements ------------------------------------------------

RunResult runIn(const Placement& where, const std::function<std::string()>& fn, int timeoutSec) {
  ChildSetup setup(where);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return {-1, false, "ERR pipe"};
  pid_t pid = ::fork();
  if (pid < 0) return {-1, false, "ERR fork"};
  if (pid == 0) {
    ::close(pipefd[0]);
    setup.enter();
    std::string result = fn();
    writeAll(pipefd[1], result.data(), result.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  return collect(pid, pipefd[0], -1, "", timeoutSec);
}

RunResult execIn(const Placement& where, const std::vector<std::string>& argv, int timeoutSec,
                 const std::string& stdinData) {
  ChildSetup setup(where);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int out[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {-1, false, "ERR pipe"};
  if (::pipe2(in, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return {-1, false, "ERR pipe"};
  }
  pid_t pid = ::fork();
  if (pid < 0) return {-1, false, "ERR fork"};
  if (pid == 0) {
    setup.enter();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(in[0]);
  ::signal(SIGPIPE, SIG_IGN);  // a child that does not read its stdin must not kill the test
  return collect(pid, out[0], in[1], stdinData, timeoutSec);
}

// ---- clients and servers -------------------------------------------------------------

std::string tcpExchange(const std::string& ip, std::uint16_t port, const std::string& payload, int timeoutMs) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(ip, port, ss, len)) return "ERR badaddr";
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return "ERR socket";
  auto fail = [&](const std::string& what) {
    ::close(fd);
    return "ERR " + what;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) return fail(strerrorname_np(errno));
    if (!waitFd(fd, POLLOUT, timeoutMs)) return fail("connect-timeout");
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) return fail(strerrorname_np(err));
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  std::string greeting;
  char c;
  while (true) {
    if (msLeft(deadline) <= 0 || !waitFd(fd, POLLIN, static_cast<int>(std::max(1L, msLeft(deadline)))))
      return fail(greeting.empty() ? "no-greeting" : "greeting-timeout");
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n == 0) return fail(greeting.empty() ? "closed" : "closed-in-greeting");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(strerrorname_np(errno));
    }
    if (c == '\n') break;
    greeting += c;
  }
  std::size_t sent = 0;
  while (sent < payload.size()) {
    if (msLeft(deadline) <= 0) return fail("send-timeout");
    ssize_t n = ::send(fd, payload.data() + sent, payload.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        waitFd(fd, POLLOUT, 50);
        continue;
      }
      return fail(strerrorname_np(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string echo;
  char buf[4096];
  while (echo.size() < payload.size()) {
    long left = msLeft(deadline);
    if (left <= 0 || !waitFd(fd, POLLIN, static_cast<int>(std::max(1L, left)))) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    echo.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  const char* verdict = echo == payload ? "echo-ok" : echo.size() < payload.size() ? "echo-short" : "echo-mismatch";
  return greeting + " " + verdict;
}

std::string tcpExchangeMany(const std::string& ip, std::uint16_t port, int count, const std::string& payload) {
  std::string out;
  for (int i = 0; i < count; ++i) out += tcpExchange(ip, port, payload) + "\n";
  return out;
}

int echoServerMain(const std::string& addr, std::uint16_t port, const std::string& name, int readyFd) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(addr, port, ss, len)) return 2;
  int lfd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(lfd, 1024) != 0) {
    std::fprintf(stderr, "echo server %s: bind %s:%u: %s\n", name.c_str(), addr.c_str(), port, std::strerror(errno));
    return 3;
  }
  if (readyFd >= 0) {
    writeAll(readyFd, "ready\n", 6);
    ::close(readyFd);
  }
  const std::string hello = name + "\n";
  std::vector<pollfd> fds{{lfd, POLLIN, 0}};
  // Bounded: a server outlives no test (the harness kills it long before).
  auto deadline = Clock::now() + std::chrono::minutes(20);
  while (msLeft(deadline) > 0) {
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (std::size_t i = fds.size(); i-- > 1;) {
      if (!fds[i].revents) continue;
      char buf[16384];
      ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        std::size_t off = 0;  // blocking-ish send: the peers are tests that read what they send
        while (off < static_cast<std::size_t>(n)) {
          ssize_t w = ::send(fds[i].fd, buf + off, static_cast<std::size_t>(n) - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<std::size_t>(w);
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fds[i].fd);
        fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (fds[0].revents & POLLIN) {
      int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ::send(c, hello.data(), hello.size(), MSG_NOSIGNAL);
      fds.push_back({c, POLLIN, 0});
    }
  }
  return 0;
}

// ---- SimPod --------------------------------------------------------------------

std::string SimPod::cgroupAbs() const { return cgroupRoot_ + cgroupRel_; }

Child& SimPod::spawn(const std::function<int()>& body, const std::string& logName) {
  procs_.push_back(std::make_unique<Child>(Child::spawn(placement(), body, logDir_ + "/" + logName)));
  return *procs_.back();
}

Child& SimPod::spawnExec(const std::vector<std::string>& argv, const std::string& logName) {
  procs_.push_back(std::make_unique<Child>(Child::exec(placement(), argv, logDir_ + "/" + logName)));
  return *procs_.back();
}

void SimPod::startEchoServer(std::uint16_t port, const std::string& greeting) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  const int writeEnd = pipefd[1];
  Child& c = spawn([=] { return echoServerMain("0.0.0.0", port, greeting, writeEnd); },
                   "echo-" + std::to_string(port) + ".log");
  ::close(pipefd[1]);
  bool ready = waitFd(pipefd[0], POLLIN, 5000);
  char buf[8] = {};
  ready = ready && ::read(pipefd[0], buf, sizeof buf) > 0;
  ::close(pipefd[0]);
  if (!ready) throw std::runtime_error("echo server " + name_ + ":" + std::to_string(port) + " did not start: " + c.log());
  servers_[port] = &c;
}

void SimPod::stopServer(std::uint16_t port, int sig) {
  auto it = servers_.find(port);
  if (it == servers_.end()) return;
  it->second->stop(sig, 2000);
  servers_.erase(it);
}

void SimPod::killAll() {
  for (auto& p : procs_) p->stop(SIGKILL, 0);
  procs_.clear();
  servers_.clear();
}

// ---- SimNode ---------------------------------------------------------------------

std::string SimNode::servedCgroupAbs() const { return cgroupRoot_ + cgroupRel_; }

void SimNode::writeConfig(const std::string& yaml) {
  const std::string tmp = dir_ + "/.node.yaml.tmp";
  {
    std::ofstream out(tmp);
    out << yaml;
  }
  fs::rename(tmp, configPath());
}


bool SimNode::startAgent(const std::vector<std::string>& extraArgs, int timeoutMs) {
  if (agent_ && agent_->running()) return true;
  std::vector<std::string> args{NM_AGENT_BINARY, "--config",       configPath(),    "--pin-root",
                                pinRoot_,        "--admin-socket", adminSocket_,    "--metrics-address",
                                metricsAddress_};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  // Inside the node netns (setns in the child, not `ip netns exec`, which would
  // remount /sys and hide bpffs and cgroup2). It goes down with the test
  // (SIGTERM: a clean exit; the pins stay and the next run's stale sweep or
  // --cleanup removes them).
  agent_ = std::make_unique<Child>(Child::exec(placement(), args, dir_ + "/agent.log", SIGTERM));
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  while (msLeft(deadline) > 0) {
    if (!agent_->running()) return false;
    if (meshctl("node status -o json").find("\"agent\"") != std::string::npos) return true;
    ::usleep(50 * 1000);
  }
  return false;
}

int SimNode::stopAgent(int sig, bool cleanupPins) {
  int status = -1;
  if (agent_) {
    status = agent_->stop(sig, 10000);
    agent_.reset();
  }
  if (cleanupPins) {
    std::error_code ec;
    if (fs::exists(pinRoot_, ec)) {
      execIn({}, {NM_AGENT_BINARY, "--cleanup", "--pin-root", pinRoot_}, 30);
      fs::remove_all(pinRoot_, ec);  // whatever --cleanup did not know about (pins are files on bpffs)
    }
  }
  return status;
}

bool SimNode::agentRunning() { return agent_ && agent_->running(); }

std::string SimNode::agentLog() const { return slurp(dir_ + "/agent.log"); }

std::string SimNode::meshctl(const std::string& args) const {
  return runCommand(std::string(NM_MESHCTL_BINARY) + " --socket " + adminSocket_ + " " + args + " 2>&1");
}

bool SimNode::waitStatus(const std::string& needle, int timeoutMs) const {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  do {
    if (meshctl("node status -o json").find(needle) != std::string::npos) return true;
    ::usleep(50 * 1000);
  } while (msLeft(deadline) > 0);
  return false;
}

std::string SimNode::ip(const std::string& args) const {
  std::vector<std::string> argv{"ip", "-n", netns_};
  for (auto& a : split(args)) argv.push_back(a);
  return execIn({}, argv, 30).out;
}

std::optional<LinkStats> SimNode::linkStats(const std::string& iface) const {
  RunResult r = execIn({}, {"ip", "-n", netns_, "-s", "-j", "link", "show", "dev", iface.empty() ? peerIf_ : iface}, 30);
  if (!r.ok()) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(r.out);
    const auto& s = j.at(0).at("stats64");
    LinkStats st;
    st.rxPackets = s.at("rx").at("packets");
    st.rxBytes = s.at("rx").at("bytes");
    st.txPackets = s.at("tx").at("packets");
    st.txBytes = s.at("tx").at("bytes");
    return st;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// ---- config generation -------------------------------------------------------------

std::vector<EndpointSpec> endpointsOn(const std::vector<const SimPod*>& pods) {
  std::vector<EndpointSpec> out;
  for (const SimPod* p : pods) {
    EndpointSpec e;
    e.address = p->ip();
    e.node = p->node().name();
    out.push_back(e);
  }
  return out;
}

namespace {

bool probeConfig(const std::string& yaml) {
  char tmpl[] = "/tmp/nm-e2e-probe-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return false;
  writeAll(fd, yaml.data(), yaml.size());
  ::close(fd);
  RunResult r = execIn({}, {NM_AGENT_BINARY, "--check-config", "--config", tmpl}, 30);
  ::unlink(tmpl);
  return r.ok();
}

const char* kProbeBase =
    "node: {name: node-a, cgroup: /nm-e2e-probe, address: 10.77.0.1}\n"
    "nodes: [{name: node-b, address: 10.77.0.2}]\n"
    "workloads: [{cgroup: /nm-e2e-probe/p, namespace: test, addresses: [10.1.1.1]}]\n";

std::string quote(const std::string& s) { return "\"" + s + "\""; }

template <typename T>
std::string flowList(const std::vector<T>& v, bool quoted) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::ostringstream one;
    one << v[i];
    out += (i ? ", " : "") + (quoted ? quote(one.str()) : one.str());
  }
  return out + "]";
}

}  // namespace

bool meshSchemaSupported() {
  static const bool yes = probeConfig(kProbeBase);
  return yes;
}

bool mtlsModeSupported() {
  static const bool yes = probeConfig(std::string(kProbeBase) +
                                      "services:\n"
                                      "  - name: web\n    namespace: test\n    vips: [10.96.0.10]\n"
                                      "    ports: [{port: 80, targetPort: 8080}]\n    mode: mtls\n"
                                      "    endpoints: [{address: 10.1.2.1, node: node-b}]\n");
  return yes;
}

bool agentHasFlag(const std::string& flag) {
  static const std::string help = execIn({}, {NM_AGENT_BINARY, "--help"}, 30).out;
  return help.find(flag) != std::string::npos;
}

std::string SimCluster::configFor(const SimNode& self, const ClusterConfig& cfg) const {
  const bool mesh = cfg.meshSchema.value_or(meshSchemaSupported());
  std::ostringstream y;
  y << "# generated by the e2e harness for " << self.name() << "\n";
  y << "node:\n  name: " << self.name() << "\n  cgroup: " << self.servedCgroupRel() << "\n";
  if (mesh) y << "  address: " << self.address() << "\n";

  std::optional<MeshSpec> m = cfg.mesh;
  if (auto it = cfg.meshPerNode.find(self.shortName()); it != cfg.meshPerNode.end()) m = it->second;
  if (m) {
    std::ostringstream body;
    if (!m->trustDomain.empty()) body << "  trustDomain: " << m->trustDomain << "\n";
    if (!m->caCertFile.empty())
      body << "  ca: {certFile: " << quote(m->caCertFile) << ", keyFile: " << quote(m->caKeyFile) << "}\n";
    if (m->certificateTtlSeconds) body << "  certificateTtlSeconds: " << *m->certificateTtlSeconds << "\n";
    if (m->workers) body << "  workers: " << *m->workers << "\n";
    y << (body.str().empty() ? "mesh: {}\n" : "mesh:\n" + body.str());
  }
  if (mesh) {
    std::vector<std::string> peers;
    for (const auto& n : nodes_)
      if (n.get() != &self) peers.push_back("  - {name: " + n->name() + ", address: " + n->address() + "}\n");
    if (!peers.empty()) {
      y << "nodes:\n";
      for (const auto& p : peers) y << p;
    }
  }
  if (!cfg.namespaces.empty()) {
    y << "namespaces:\n";
    for (const auto& ns : cfg.namespaces) {
      y << "  - name: " << ns.name << "\n";
      if (ns.mesh) y << "    mesh: " << (*ns.mesh ? "enabled" : "disabled") << "\n";
      if (ns.inbound) y << "    inbound: " << *ns.inbound << "\n";
    }
  }
  y << "workloads:\n";
  if (self.pods().empty()) y << "  []\n";
  for (const auto& p : self.pods()) {
    y << "  - cgroup: " << p->cgroupRel() << "\n    namespace: " << p->options().ns
      << "\n    serviceAccount: " << p->options().serviceAccount << "\n";
    if (mesh) y << "    addresses: [" << quote(p->ip()) << "]\n";
    if (p->options().meshed) y << "    mesh: " << (*p->options().meshed ? "enabled" : "disabled") << "\n";
    if (p->options().inbound) y << "    inbound: " << *p->options().inbound << "\n";
  }
  y << "services:\n";
  if (cfg.services.empty()) y << "  []\n";
  for (const auto& s : cfg.services) {
    y << "  - name: " << s.name << "\n    namespace: " << s.ns << "\n    vips: [" << quote(s.vip) << "]\n"
      << "    ports: [{port: " << s.port << ", protocol: " << s.protocol << ", targetPort: " << s.targetPort << "}]\n"
      << "    mode: " << s.mode << "\n    loadBalancing: " << s.loadBalancing << "\n    endpoints:\n";
    if (s.endpoints.empty()) y << "      []\n";
    for (const auto& e : s.endpoints) {
      y << "      - {address: " << quote(e.address);
      if (e.port) y << ", port: " << *e.port;
      y << ", weight: " << e.weight << ", ready: " << (e.ready ? "true" : "false");
      if (mesh && !e.node.empty()) y << ", node: " << e.node;
      y << "}\n";
    }
  }
  if (!cfg.authorization.empty()) {
    y << "authorization:\n";
    for (const auto& r : cfg.authorization) {
      y << "  - name: " << r.name << "\n    action: " << r.action << "\n";
      if (!r.fromIdentities.empty() || !r.fromNamespaces.empty()) {
        y << "    from:\n";
        if (!r.fromIdentities.empty()) y << "      identities: " << flowList(r.fromIdentities, true) << "\n";
        if (!r.fromNamespaces.empty()) y << "      namespaces: " << flowList(r.fromNamespaces, false) << "\n";
      }
      if (!r.toNamespaces.empty() || !r.toPorts.empty()) {
        y << "    to:\n";
        if (!r.toNamespaces.empty()) y << "      namespaces: " << flowList(r.toNamespaces, false) << "\n";
        if (!r.toPorts.empty()) y << "      ports: " << flowList(r.toPorts, false) << "\n";
      }
    }
  }
  return y.str();
}

// ---- SimCluster -----------------------------------------------------------------------

SimCluster::SimCluster() {
  static int counter = 0;
  prefix_ = "nm-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  dir_ = "/tmp/" + prefix_;
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  cgroupRoot_ = cgroupRootDir();
  cgroupRel_ = "/" + prefix_;
  fs::create_directories(cgroupAbs());
}

SimCluster::~SimCluster() { teardown(); }

std::vector<SimNode*> SimCluster::nodes() const {
  std::vector<SimNode*> out;
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

SimNode& SimCluster::node(const std::string& shortName) {
  for (auto& n : nodes_)
    if (n->shortName() == shortName) return *n;
  throw std::runtime_error("no node " + shortName);
}

SimNode& SimCluster::addNode(const std::string& shortName) {
  if (nodes_.size() >= 2) throw std::runtime_error("SimCluster: at most two nodes (one veth pair)");
  if (shortName.empty() || shortName.size() > 8) throw std::runtime_error("node short name: 1..8 characters");
  auto n = std::unique_ptr<SimNode>(new SimNode());
  n->short_ = shortName;
  n->name_ = "node-" + shortName;
  n->index_ = static_cast<int>(nodes_.size()) + 1;
  n->address_ = "10.77.0." + std::to_string(n->index_);
  n->netns_ = prefix_ + "-" + shortName;
  n->cgroupRoot_ = cgroupRoot_;
  n->cgroupRel_ = cgroupRel_ + "/" + shortName;
  n->pinRoot_ = "/sys/fs/bpf/" + prefix_ + "-" + shortName;
  n->dir_ = dir_ + "/" + shortName;
  n->adminSocket_ = n->dir_ + "/admin.sock";
  n->metricsAddress_ = "127.0.0.1:15020";  // the node netns's own loopback
  fs::create_directories(n->dir_);
  fs::create_directories(n->servedCgroupAbs());

  must({"ip", "netns", "add", n->netns_});
  netnsCreated_.push_back(n->netns_);
  must({"ip", "-n", n->netns_, "link", "set", "lo", "up"});
  netnsSysctl(n->netns_, "/proc/sys/net/ipv4/ip_forward", "1");
  netnsSysctl(n->netns_, "/proc/sys/net/ipv4/conf/all/rp_filter", "0");
  netnsSysctl(n->netns_, "/proc/sys/net/ipv4/conf/default/rp_filter", "0");

  SimNode& added = *n;
  nodes_.push_back(std::move(n));
  if (nodes_.size() == 2) {
    SimNode& a = *nodes_[0];
    SimNode& b = *nodes_[1];
    a.peerIf_ = "to-" + b.short_;
    b.peerIf_ = "to-" + a.short_;
    // Created directly inside the two node netns: nothing ever appears in the host's.
    must({"ip", "-n", a.netns_, "link", "add", a.peerIf_, "type", "veth", "peer", "name", b.peerIf_, "netns",
          b.netns_});
    for (SimNode* x : {&a, &b}) {
      SimNode* other = x == &a ? &b : &a;
      must({"ip", "-n", x->netns_, "addr", "add", x->address_ + "/24", "dev", x->peerIf_});
      must({"ip", "-n", x->netns_, "link", "set", x->peerIf_, "up"});
      must({"ip", "-n", x->netns_, "route", "add", other->podCidr(), "via", other->address_, "dev", x->peerIf_});
    }
  }
  return added;
}

SimPod& SimCluster::addPod(SimNode& node, const std::string& name, const PodOptions& opts) {
  if (name.empty() || name.size() > 12) throw std::runtime_error("pod name: 1..12 characters");
  if (node.podCount_ >= 250) throw std::runtime_error("too many pods");
  auto p = std::unique_ptr<SimPod>(new SimPod());
  p->name_ = name;
  p->node_ = &node;
  p->opts_ = opts;
  p->ip_ = "10.1." + std::to_string(node.index_) + "." + std::to_string(++node.podCount_);
  p->netns_ = node.netns_ + "-" + name;
  p->cgroupRoot_ = cgroupRoot_;
  p->cgroupRel_ = node.cgroupRel_ + "/" + name;
  p->nodeIf_ = "p-" + name;
  p->logDir_ = node.dir_ + "/" + name;
  fs::create_directories(p->logDir_);
  fs::create_directories(p->cgroupAbs());

  must({"ip", "netns", "add", p->netns_});
  netnsCreated_.push_back(p->netns_);
  must({"ip", "-n", p->netns_, "link", "set", "lo", "up"});
  must({"ip", "-n", node.netns_, "link", "add", p->nodeIf_, "type", "veth", "peer", "name", "eth0", "netns",
        p->netns_});
  const std::string gw = node.podGateway();
  must({"ip", "-n", p->netns_, "addr", "add", p->ip_ + "/32", "dev", "eth0"});
  must({"ip", "-n", p->netns_, "link", "set", "eth0", "up"});
  must({"ip", "-n", p->netns_, "route", "add", gw + "/32", "dev", "eth0", "scope", "link"});
  // Only the cluster's private range goes to the node; there is no default route.
  must({"ip", "-n", p->netns_, "route", "add", "10.0.0.0/8", "via", gw, "dev", "eth0"});
  must({"ip", "-n", node.netns_, "addr", "add", gw + "/32", "dev", p->nodeIf_});
  must({"ip", "-n", node.netns_, "link", "set", p->nodeIf_, "up"});
  must({"ip", "-n", node.netns_, "route", "add", p->ip_ + "/32", "dev", p->nodeIf_, "scope", "link"});
  node.pods_.push_back(std::move(p));
  return *node.pods_.back();
}

::testing::AssertionResult SimCluster::startAgents(const ClusterConfig& cfg, const std::vector<std::string>& extraArgs) {
  for (auto& n : nodes_) n->writeConfig(configFor(*n, cfg));
  for (auto& n : nodes_) {
    if (!n->startAgent(extraArgs)) {
      return ::testing::AssertionFailure() << "agent of " << n->name() << " did not start\n--- config:\n"
                                           << slurp(n->configPath()) << "--- log:\n"
                                           << n->agentLog();
    }
  }
  return ::testing::AssertionSuccess();
}

void SimCluster::teardown() {
  if (tornDown_) return;
  tornDown_ = true;
  // 1. Processes we started in pods, by PID.
  for (auto& n : nodes_)
    for (auto& p : n->pods_) p->killAll();
  // 2. Agents: SIGTERM, then --cleanup of their pins (detaches the hooks).
  for (auto& n : nodes_) n->stopAgent(SIGTERM, true);
  // 3. Anything still in our private cgroup tree descends from this test
  //    process (the tree's name carries our PID): kill those by PID.
  for (int round = 0; round < 50; ++round) {
    auto pids = cgroupPids(cgroupAbs());
    if (pids.empty()) break;
    for (pid_t p : pids) ::kill(p, SIGKILL);
    ::usleep(20 * 1000);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }
  // 4. Cgroups, deepest first.
  removeCgroupTree(cgroupAbs());
  // 5. Network namespaces (their veths go with them), pods before nodes.
  for (auto it = netnsCreated_.rbegin(); it != netnsCreated_.rend(); ++it) execIn({}, {"ip", "netns", "del", *it}, 30);
  netnsCreated_.clear();
  // 6. Files.
  const char* keep = std::getenv("NM_E2E_KEEP_DIR");
  if (!(keep && std::string(keep) == "1")) fs::remove_all(dir_);
}

std::string SimCluster::leftovers() const {
  std::string out;
  for (const auto& ns : netnsList())
    if (ns.rfind(prefix_ + "-", 0) == 0) out += "netns " + ns + "\n";
  std::error_code ec;
  if (fs::exists(cgroupAbs(), ec)) out += "cgroup " + cgroupAbs() + "\n";
  for (const auto& e : fs::directory_iterator("/sys/fs/bpf", ec))
    if (e.path().filename().string().rfind(prefix_ + "-", 0) == 0) out += "bpffs " + e.path().string() + "\n";
  const char* keep = std::getenv("NM_E2E_KEEP_DIR");
  if (fs::exists(dir_, ec) && !(keep && std::string(keep) == "1")) out += "dir " + dir_ + "\n";
  for (const auto& n : nodes_)
    if (n->agent_) out += "agent of " + n->name() + " still tracked\n";
  return out;
}

// ---- capture -------------------------------------------------------------------------

bool looksLikeTls(const std::string& d) {
  std::size_t off = 0;
  int records = 0;
  while (off + 5 <= d.size()) {
    auto type = static_cast<unsigned char>(d[off]);
    auto major = static_cast<unsigned char>(d[off + 1]);
    auto minor = static_cast<unsigned char>(d[off + 2]);
    std::size_t len = (static_cast<unsigned char>(d[off + 3]) << 8) | static_cast<unsigned char>(d[off + 4]);
    if (type < 20 || type > 24 || major != 3 || minor > 4 || len == 0 || len > 16384 + 2048) return false;
    ++records;
    off += 5 + len;
  }
  if (off < d.size()) {  // a partial record header at the very end
    auto type = static_cast<unsigned char>(d[off]);
    if (type < 20 || type > 24) return false;
    if (off + 1 < d.size() && static_cast<unsigned char>(d[off + 1]) != 3) return false;
  }
  return records > 0;
}

std::size_t CaptureSummary::tlsFlows() const {
  return static_cast<std::size_t>(std::count_if(flows.begin(), flows.end(), [](const auto& f) { return f.tls; }));
}

std::size_t CaptureSummary::plaintextFlows() const { return flows.size() - tlsFlows(); }

bool CaptureSummary::contains(const std::string& needle) const {
  for (const auto& f : flows)
    if (f.payload.find(needle) != std::string::npos) return true;
  return false;
}

std::string CaptureSummary::describe() const {
  std::ostringstream o;
  o << packets << " packets, " << flows.size() << " flows with payload\n";
  std::size_t shown = 0;
  for (const auto& f : flows) {
    if (++shown > 16) {
      o << "  ... " << flows.size() - 16 << " more\n";
      break;
    }
    std::string head;
    for (char c : f.payload.substr(0, 48)) head += (c >= 32 && c < 127) ? c : '.';
    o << "  " << f.src << " -> " << f.dst << ": " << f.payload.size() << " bytes, " << (f.tls ? "TLS" : "PLAINTEXT")
      << " [" << head << "]\n";
  }
  return o.str();
}

namespace {
std::uint32_t rd32(const unsigned char* p, bool swap) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}
std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

struct FlowAcc {
  std::optional<std::uint32_t> isn;  // first payload byte's sequence number, from the SYN
  std::optional<std::uint32_t> firstSeq;
  std::vector<std::pair<std::uint32_t, std::string>> segs;
};
}  // namespace

CaptureSummary parsePcap(const std::string& path, std::string* error) {
  CaptureSummary sum;
  auto fail = [&](const std::string& e) {
    if (error) *error = e;
    return sum;
  };
  auto text = readFile(path);
  if (!text) return fail("cannot read " + path);
  const auto* d = reinterpret_cast<const unsigned char*>(text->data());
  const std::size_t size = text->size();
  if (size < 24) return fail("no pcap header in " + path);
  std::uint32_t magic;
  std::memcpy(&magic, d, 4);
  bool swap;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swap = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swap = true;
  } else {
    return fail("not a pcap file (pcapng is not supported): " + path);
  }
  const std::uint32_t linktype = rd32(d + 20, swap);
  std::map<std::string, FlowAcc> flows;
  std::vector<std::string> order;
  std::size_t off = 24;
  while (off + 16 <= size) {
    std::uint32_t incl = rd32(d + off + 8, swap);
    off += 16;
    if (off + incl > size) break;  // truncated last record (capture killed mid-write)
    const unsigned char* pkt = d + off;
    std::size_t len = incl;
    off += incl;
    ++sum.packets;
    std::uint16_t etherType;
    std::size_t l3;
    if (linktype == 1) {  // Ethernet
      if (len < 14) continue;
      etherType = be16(pkt + 12);
      l3 = 14;
      if (etherType == 0x8100 && len >= 18) etherType = be16(pkt + 16), l3 = 18;
    } else if (linktype == 113) {  // Linux cooked v1
      if (len < 16) continue;
      etherType = be16(pkt + 14), l3 = 16;
    } else if (linktype == 276) {  // Linux cooked v2
      if (len < 20) continue;
      etherType = be16(pkt), l3 = 20;
    } else {
      return fail("unsupported link type " + std::to_string(linktype));
    }
    char sbuf[INET6_ADDRSTRLEN], dbuf[INET6_ADDRSTRLEN];
    std::size_t l4, end;
    if (etherType == 0x0800) {
      if (len < l3 + 20) continue;
      const unsigned char* ip = pkt + l3;
      std::size_t ihl = (ip[0] & 0x0f) * 4u;
      if (ip[9] != 6 || ihl < 20) continue;
      end = std::min(len, l3 + be16(ip + 2));  // the IP length: Ethernet pads short frames
      l4 = l3 + ihl;
      inet_ntop(AF_INET, ip + 12, sbuf, sizeof sbuf);
      inet_ntop(AF_INET, ip + 16, dbuf, sizeof dbuf);
    } else if (etherType == 0x86dd) {
      if (len < l3 + 40) continue;
      const unsigned char* ip = pkt + l3;
      if (ip[6] != 6) continue;  // no extension headers in our traffic
      end = std::min(len, l3 + 40 + be16(ip + 4));
      l4 = l3 + 40;
      inet_ntop(AF_INET6, ip + 8, sbuf, sizeof sbuf);
      inet_ntop(AF_INET6, ip + 24, dbuf, sizeof dbuf);
    } else {
      continue;
    }
    if (end < l4 + 20) continue;
    const unsigned char* tcp = pkt + l4;
    std::size_t doff = (tcp[12] >> 4) * 4u;
    if (doff < 20 || l4 + doff > end) continue;
    const std::string key = std::string(sbuf) + ":" + std::to_string(be16(tcp)) + " -> " + dbuf + ":" +
                            std::to_string(be16(tcp + 2));
    auto [it, fresh] = flows.try_emplace(key);
    if (fresh) order.push_back(key);
    FlowAcc& f = it->second;
    const std::uint32_t seq = be32(tcp + 4);
    if (tcp[13] & 0x02) f.isn = seq + 1;  // SYN
    std::size_t plen = end - l4 - doff;
    if (plen == 0) continue;
    if (!f.firstSeq) f.firstSeq = seq;
    f.segs.emplace_back(seq, std::string(reinterpret_cast<const char*>(tcp + doff), plen));
  }
  for (const auto& key : order) {
    FlowAcc& f = flows[key];
    if (f.segs.empty()) continue;
    const std::uint32_t base = f.isn ? *f.isn : *f.firstSeq;
    std::vector<std::pair<std::int64_t, const std::string*>> segs;
    for (const auto& [seq, data] : f.segs) segs.emplace_back(static_cast<std::int32_t>(seq - base), &data);
    std::stable_sort(segs.begin(), segs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    TcpFlowText out;
    auto arrow = key.find(" -> ");
    out.src = key.substr(0, arrow);
    out.dst = key.substr(arrow + 4);
    std::int64_t cur = segs.front().first;
    for (const auto& [rel, data] : segs) {
      std::int64_t segEnd = rel + static_cast<std::int64_t>(data->size());
      if (segEnd <= cur) continue;  // a retransmission of what we have
      if (rel > cur) {              // a hole (not captured): keep going
        out.payload += *data;
      } else {
        out.payload += data->substr(static_cast<std::size_t>(cur - rel));
      }
      cur = segEnd;
    }
    out.tls = looksLikeTls(out.payload);
    sum.flows.push_back(std::move(out));
  }
  return sum;
}

Capture::Capture(const SimNode& node, const std::string& file, const std::string& iface) : file_(file) {
  log_ = file + ".log";
  const std::string dev = iface.empty() ? node.peerInterface() : iface;
  // -Z root: keep root so the file can be written wherever the test puts it;
  // --immediate-mode -U: every packet reaches the file at once (TPACKET_V3
  // otherwise holds a block back, and SIGINT loses it); -s 0: whole packets.
  proc_ = Child::exec(node.placement(),
                      {"tcpdump", "-i", dev, "-n", "-s", "0", "--immediate-mode", "-U", "-Z", "root", "-w", file, "tcp"},
                      log_);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (msLeft(deadline) > 0) {
    if (slurp(log_).find("listening on") != std::string::npos) {
      started_ = true;
      break;
    }
    if (!proc_.running()) break;
    ::usleep(20 * 1000);
  }
  if (!started_) error_ = "tcpdump did not start: " + slurp(log_);
  // tcpdump says "listening" just before its capture loop: give the socket a moment.
  if (started_) ::usleep(200 * 1000);
}

CaptureSummary Capture::stop() {
  if (stopped_) return summary_;
  stopped_ = true;
  if (!started_) {
    proc_.stop(SIGKILL, 0);
    return summary_;
  }
  ::usleep(200 * 1000);  // the last packets of the test reach the capture
  proc_.stop(SIGINT, 5000);
  std::string err;
  summary_ = parsePcap(file_, &err);
  if (!err.empty()) error_ = err;
  return summary_;
}

// ---- certificates ---------------------------------------------------------------------

std::optional<TestCa> makeTestCa(const std::string& dir, const std::string& name, std::string* error) {
  // The script operators use (docs/OPERATIONS.md), so the e2e mesh tests prove what it makes.
  const std::string caDir = dir + "/" + name;
  TestCa ca{caDir + "/ca.pem", caDir + "/ca-key.pem"};
  RunResult r = execIn({}, {NM_MAKE_MESH_CA, caDir, "--days", "2", "--name", name}, 60);
  if (!r.ok()) {
    if (error) *error = r.out;
    return std::nullopt;
  }
  return ca;
}

// ---- fixture and global environment ------------------------------------------------------

void E2eTest::SetUp() {
  NM_REQUIRE_ROOT();
  cluster = std::make_unique<SimCluster>();
}

void E2eTest::TearDown() {
  if (!cluster) return;
  if (HasFailure()) {
    for (SimNode* n : cluster->nodes()) {
      std::string log = n->agentLog();
      if (log.size() > 6000) log = "...\n" + log.substr(log.size() - 6000);
      std::cerr << "---- agent log of " << n->name() << " (tail) ----\n" << log << "\n";
    }
  }
  cluster->teardown();
  EXPECT_EQ(cluster->leftovers(), "") << "the harness left these behind";
  cluster.reset();
}

namespace {

// Removes what a killed earlier run of this harness left (names carry the PID
// of a process that no longer exists). Never touches a live run's objects.
class StaleSweep : public ::testing::Environment {
 public:
  void SetUp() override {
    if (::geteuid() != 0) return;
    auto deadPrefix = [](const std::string& name) -> bool {
      if (name.rfind("nm-e2e-", 0) != 0) return false;
      pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + 7));
      return pid > 0 && pid != ::getpid() && !pidAlive(pid);
    };
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/fs/bpf", ec)) {
      std::string n = e.path().filename();
      if (!deadPrefix(n)) continue;
      execIn({}, {NM_AGENT_BINARY, "--cleanup", "--pin-root", e.path()}, 30);
      fs::remove_all(e.path(), ec);
      std::cerr << "e2e: removed stale pins " << e.path() << "\n";
    }
    const std::string cg = cgroupRootDir();
    for (const auto& e : fs::directory_iterator(cg, ec)) {
      std::string n = e.path().filename();
      if (!e.is_directory() || !deadPrefix(n)) continue;
      if (!cgroupPids(e.path()).empty()) {
        std::cerr << "e2e: stale cgroup " << e.path() << " still has processes; left alone\n";
        continue;
      }
      removeCgroupTree(e.path());
      std::cerr << "e2e: removed stale cgroup " << e.path() << "\n";
    }
    for (const auto& ns : netnsList()) {
      if (!deadPrefix(ns)) continue;
      execIn({}, {"ip", "netns", "del", ns}, 30);
      std::cerr << "e2e: removed stale netns " << ns << "\n";
    }
    for (const auto& e : fs::directory_iterator("/tmp", ec))
      if (deadPrefix(e.path().filename())) fs::remove_all(e.path(), ec);
  }

  void TearDown() override {
    if (::geteuid() != 0) return;
    // Whatever this process created must be gone now.
    const std::string mine = "nm-e2e-" + std::to_string(::getpid()) + "-";
    std::string left;
    for (const auto& ns : netnsList())
      if (ns.rfind(mine, 0) == 0) left += " netns:" + ns;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/fs/bpf", ec))
      if (e.path().filename().string().rfind(mine, 0) == 0) left += " bpffs:" + e.path().string();
    for (const auto& e : fs::directory_iterator(cgroupRootDir(), ec))
      if (e.path().filename().string().rfind(mine, 0) == 0) left += " cgroup:" + e.path().string();
    if (!left.empty()) ADD_FAILURE() << "e2e run left behind:" << left;
  }
};

[[maybe_unused]] ::testing::Environment* const kSweep = ::testing::AddGlobalTestEnvironment(new StaleSweep);

}  // namespace

// ---- helpers for the mesh tests -----------------------------------------------------------

std::optional<TestLeaf> issueLeaf(const TestCa& ca, const std::string& dir, const std::string& name,
                                  const std::string& uriSan, std::string* error) {
  TestLeaf leaf{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  const std::string csr = dir + "/" + name + ".csr", ext = dir + "/" + name + ".ext";
  fs::create_directories(dir);
  {
    std::ofstream e(ext);
    e << "subjectAltName=critical,URI:" << uriSan << "\nbasicConstraints=critical,CA:FALSE\n"
      << "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\n";
  }
  RunResult r = execIn({}, {"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", leaf.keyFile, "-out", csr, "-subj", "/O=nodemesh e2e"},
                       60);
  if (r.ok())
    r = execIn({}, {"openssl", "x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-set_serial",
                    std::to_string(1000 + ::getpid()), "-days", "1", "-sha256", "-extfile", ext, "-out", leaf.certFile},
               60);
  if (!r.ok()) {
    if (error) *error = r.out;
    return std::nullopt;
  }
  return leaf;
}

std::string SimNode::metrics() const {
  return execIn(placement(), {"curl", "-s", "--max-time", "5", "http://" + metricsAddress_ + "/metrics"}, 10).out;
}

std::string metricLines(const std::string& text, const std::string& nameFragment) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '#' && line.substr(0, line.find_first_of("{ ")).find(nameFragment) != std::string::npos)
      out += line + "\n";
  return out.empty() ? "(no metric matching '" + nameFragment + "'; " + std::to_string(text.size()) + " bytes of metrics)\n" : out;
}

double metricSum(const std::string& text, const std::string& nameFragment, const std::string& labelFragment) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto nameEnd = line.find_first_of("{ ");
    if (nameEnd == std::string::npos) continue;
    if (line.substr(0, nameEnd).find(nameFragment) == std::string::npos) continue;
    std::string labels;
    if (line[nameEnd] == '{') labels = line.substr(nameEnd, line.find('}', nameEnd) - nameEnd + 1);
    if (!labelFragment.empty() && labels.find(labelFragment) == std::string::npos) continue;
    auto valueAt = line.find_last_of(' ');
    try {
      sum += std::stod(line.substr(valueAt + 1));
    } catch (const std::exception&) {
    }
  }
  return sum;
}

std::string tcpLoad(const std::string& ip, std::uint16_t port, int seconds, int longConns, int newEveryMs) {
  long longOk = 0, longFail = 0, newOk = 0, newFail = 0;
  std::string firstError;
  auto noteError = [&](const std::string& e) {
    if (firstError.empty()) firstError = e;
  };
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(ip, port, ss, len)) return "ERR badaddr";
  std::vector<int> conns;
  for (int i = 0; i < longConns; ++i) {
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string greeting;
    char c;
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    while (ok && ::recv(fd, &c, 1, 0) == 1 && c != '\n') greeting += c;
    if (!ok || greeting.empty()) {
      noteError(std::string("long connect: ") + strerrorname_np(errno));
      ++longFail;
      ::close(fd);
      fd = -1;
    }
    conns.push_back(fd);
  }
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  auto nextNew = Clock::now();
  long round = 0;
  while (msLeft(deadline) > 0) {
    ++round;
    for (std::size_t i = 0; i < conns.size(); ++i) {
      if (conns[i] < 0) continue;
      const std::string msg = "r" + std::to_string(round) + "c" + std::to_string(i) + "-load-exchange-padding";
      errno = 0;
      bool ok = ::send(conns[i], msg.data(), msg.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size());
      std::string back;
      char buf[256];
      while (ok && back.size() < msg.size()) {
        ssize_t n = ::recv(conns[i], buf, sizeof buf, 0);
        if (n <= 0) {
          ok = false;
          break;
        }
        back.append(buf, static_cast<std::size_t>(n));
      }
      if (ok && back == msg) {
        ++longOk;
      } else {
        ++longFail;
        noteError("long conn " + std::to_string(i) + " round " + std::to_string(round) + ": " +
                  (back.empty() ? std::string(errno ? strerrorname_np(errno) : "closed") : "mismatch"));
        ::close(conns[i]);
        conns[i] = -1;  // a dropped connection stays dropped: that is what we count
      }
    }
    if (Clock::now() >= nextNew) {
      nextNew += std::chrono::milliseconds(newEveryMs);
      std::string r = tcpExchange(ip, port, "new-connection-" + std::to_string(round));
      if (r.find("echo-ok") != std::string::npos) {
        ++newOk;
      } else {
        ++newFail;
        noteError("new conn round " + std::to_string(round) + ": " + r);
      }
    }
    ::usleep(100 * 1000);
  }
  for (int fd : conns)
    if (fd >= 0) ::close(fd);
  for (char& c : firstError)
    if (c == ' ') c = '_';
  return "long_ok=" + std::to_string(longOk) + " long_fail=" + std::to_string(longFail) +
         " new_ok=" + std::to_string(newOk) + " new_fail=" + std::to_string(newFail) +
         " first_error=" + (firstError.empty() ? "-" : firstError);
}

LoadResult parseLoad(const std::string& line) {
  LoadResult r;
  r.raw = line;
  std::istringstream in(line);
  std::string kv;
  while (in >> kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    try {
      if (k == "long_ok") r.longOk = std::stol(v);
      if (k == "long_fail") r.longFail = std::stol(v);
      if (k == "new_ok") r.newOk = std::stol(v);
      if (k == "new_fail") r.newFail = std::stol(v);
    } catch (const std::exception&) {
    }
    if (k == "first_error") r.firstError = v;
  }
  if (line.rfind("long_ok=", 0) != 0) r.firstError = line;  // not a report at all
  return r;
}

}  // namespace nodemesh::e2e
