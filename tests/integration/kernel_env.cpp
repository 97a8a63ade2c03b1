#include "kernel_env.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
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
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/system_paths.h"

namespace nodemesh::testing {
namespace {

std::string cgroupRoot() {
  auto m = discoverCgroup2Mount();
  return m ? *m : "/sys/fs/cgroup";
}


std::string addrText(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
}

int boundSocket(int type, const std::string& address, std::uint16_t& port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(address, 0, ss, len)) return -1;
  int fd = ::socket(ss.ss_family, type | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

bool waitReadable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

}  // namespace

bool privilegedRequired() {
  const char* v = std::getenv("NODEMESH_REQUIRE_PRIVILEGED");
  return v && std::string(v) == "1";
}

TestCgroup::TestCgroup() {
  static int counter = 0;
  relative_ = "/nodemesh-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  absolute_ = cgroupRoot() + relative_;
  std::filesystem::create_directories(absolute_ + "/client");
}

std::string TestCgroup::child(const std::string& name) {
  const std::string path = absolute_ + "/" + name;
  if (std::find(children_.begin(), children_.end(), path) == children_.end()) {
    std::filesystem::create_directories(path);
    children_.push_back(path);
  }
  return path;
}

TestCgroup::~TestCgroup() {
  // Children that ran in here have exited; rmdir fails only if one is still alive.
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) ::rmdir(it->c_str());
  ::rmdir((absolute_ + "/client").c_str());
  ::rmdir(absolute_.c_str());
}

TcpBackend::TcpBackend(std::string name, const std::string& address) : name_(std::move(name)) {
  fd_ = boundSocket(SOCK_STREAM, address, port_);
  if (fd_ < 0 || ::listen(fd_, 512) != 0) throw std::runtime_error("tcp backend bind " + address);
  // One thread, one poll loop: thousands of short connections in the churn
  // tests must not cost a thread each.
  thread_ = std::thread([this] {
    std::vector<pollfd> fds{{fd_, POLLIN, 0}};
    while (!stop_) {
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      for (std::size_t i = fds.size(); i-- > 1;) {
        if (!fds[i].revents) continue;
        char buf[512];
        ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          ::send(fds[i].fd, buf, n, MSG_NOSIGNAL);  // echo, for long-lived connection tests
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
      if (fds[0].revents & POLLIN) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::string hello = name_ + "\n";
        ::send(c, hello.data(), hello.size(), MSG_NOSIGNAL);
        fds.push_back({c, POLLIN, 0});
      }
    }
    for (std::size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
  });
}

TcpBackend::~TcpBackend() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
}

UdpBackend::UdpBackend(std::string name, const std::string& address) : name_(std::move(name)) {
  fd_ = boundSocket(SOCK_DGRAM, address, port_);
  if (fd_ < 0) throw std::runtime_error("udp backend bind " + address);
  thread_ = std::thread([this] {
    char buf[512];
    while (!stop_) {
      if (!waitReadable(fd_, 50)) continue;
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      if (::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) < 0) continue;
      ::sendto(fd_, name_.data(), name_.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  });
}

UdpBackend::~UdpBackend() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
}

std::string runInCgroup(const std::string& cgroupDir, const std::function<std::string()>& fn, int timeoutSec) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return "ERROR: pipe";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string result;
    {
      std::ofstream procs(cgroupDir + "/cgroup.procs");
      procs << ::getpid() << std::flush;
      if (!procs) result = "ERROR: cannot join cgroup " + cgroupDir;
    }
    if (result.empty()) result = fn();
    const char* p = result.data();
    std::size_t left = result.size();
    while (left > 0) {
      ssize_t n = ::write(pipefd[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= n;
    }
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSec);
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      out = "ERROR: client timed out after " + std::to_string(timeoutSec) + "s; partial: " + out;
      break;
    }
    if (!waitReadable(pipefd[0], static_cast<int>(left))) continue;
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, n);
  }
  ::close(pipefd[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

std::string tcpAsk(const std::string& ip, std::uint16_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(ip, port, ss, len)) return "ERR badaddr";
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    std::string e = std::string("ERR ") + strerrorname_np(errno);
    ::close(fd);
    return e;
  }
  std::string line;
  char c;
  while (waitReadable(fd, 5000) && ::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
  ::close(fd);
  return line.empty() ? "ERR empty" : line;
}

std::string udpAsk(const std::string& ip, std::uint16_t port, std::string* from) {
  sockaddr_storage ss;
  socklen_t len;
  if (!fillAddr(ip, port, ss, len)) return "ERR badaddr";
  int fd = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (::sendto(fd, "?", 1, 0, reinterpret_cast<sockaddr*>(&ss), len) != 1) {
    std::string e = std::string("ERR ") + strerrorname_np(errno);
    ::close(fd);
    return e;
  }
  char buf[256];
  sockaddr_storage peer{};
  socklen_t plen = sizeof peer;
  std::string out = "ERR timeout";
  if (waitReadable(fd, 3000)) {
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n > 0) {
      out.assign(buf, n);
      if (from) *from = addrText(peer);
    }
  }
  ::close(fd);
  return out;
}

void AgentProcess::makeDirs() {
  char tmpl[] = "/tmp/nodemesh-test-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  pinRoot_ = "/sys/fs/bpf/nodemesh-test-" + std::to_string(::getpid()) + "-" + dir_.substr(dir_.rfind('-') + 1);
  socket_ = dir_ + "/admin.sock";
}

AgentProcess::AgentProcess(const std::string& configYaml) {
  makeDirs();
  writeConfig(configYaml);
}

AgentProcess::AgentProcess(SourceArgs source) : sourceArgs_(std::move(source.args)) { makeDirs(); }

AgentProcess::~AgentProcess() {
  kill(SIGTERM);
  cleanup();
  std::filesystem::remove_all(dir_);
}

bool AgentProcess::start() {
  // argv is built before fork: the test has threads (backends, the fake API
  // server), so the child must not allocate.
  std::vector<std::string> args{NM_AGENT_BINARY};
  if (sourceArgs_.empty()) {
    args.insert(args.end(), {"--config", configPath()});
  } else {
    args.insert(args.end(), sourceArgs_.begin(), sourceArgs_.end());
  }
  args.insert(args.end(), {"--pin-root", pinRoot_, "--admin-socket", socket_});
  bool metricsNamed = false;
  for (const auto& a : extraArgs_) metricsNamed = metricsNamed || a.rfind("--metrics-address", 0) == 0;
  if (!metricsNamed) args.insert(args.end(), {"--metrics-address", "127.0.0.1:0"});
  args.insert(args.end(), extraArgs_.begin(), extraArgs_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string logPath = dir_ + "/agent.log";
  pid_ = ::fork();
  if (pid_ == 0) {
    // If the test process dies (a crash, a timeout kill), its agent goes too.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(NM_AGENT_BINARY, argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (meshctl("node status -o json").find("\"agent\"") != std::string::npos) return true;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    ::usleep(50 * 1000);
  }
  return false;
}

void AgentProcess::kill(int sig) {
  if (pid_ <= 0) return;
  ::kill(pid_, sig);
  if (sig == SIGHUP) return;
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void AgentProcess::writeConfig(const std::string& yaml) {
  const std::string tmp = dir_ + "/.node.yaml.tmp";
  {
    std::ofstream out(tmp);
    out << yaml;
  }
  std::filesystem::rename(tmp, configPath());
}

std::string AgentProcess::meshctl(const std::string& args) const {
  return runCommand(std::string(NM_MESHCTL_BINARY) + " --socket " + socket_ + " " + args + " 2>&1");
}

std::string AgentProcess::logs() const {
  auto text = readFile(dir_ + "/agent.log");
  return text ? *text : "";
}

int AgentProcess::cleanup() {
  std::string cmd = std::string(NM_AGENT_BINARY) + " --cleanup --pin-root " + pinRoot_ + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

TestNetns::TestNetns(const std::string& tag) : name_("nmt-" + std::to_string(::getpid()) + "-" + tag) {
  ok_ = std::system(("ip netns add " + name_ + " >/dev/null 2>&1").c_str()) == 0 && ip("link set lo up");
}

TestNetns::~TestNetns() { std::system(("ip netns del " + name_ + " >/dev/null 2>&1").c_str()); }

bool TestNetns::ip(const std::string& args) const {
  return std::system(("ip -n " + name_ + " " + args + " >/dev/null 2>&1").c_str()) == 0;
}

bool TestNetns::enter() const {
  int fd = ::open(path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool entered = ::setns(fd, CLONE_NEWNET) == 0;
  ::close(fd);
  return entered;
}

bool vethPair(const TestNetns& a, const std::string& ifA, const TestNetns& b, const std::string& ifB) {
  return a.ip("link add " + ifA + " type veth peer name " + ifB + " netns " + b.name()) && a.ip("link set " + ifA + " up") &&
         b.ip("link set " + ifB + " up");
}

int attachedPrograms(const std::string& cgroupDir, int attachType) {
  int fd = ::open(cgroupDir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return -1;
  __u32 ids[16], count = 16, flags = 0;
  int rc = bpf_prog_query(fd, static_cast<bpf_attach_type>(attachType), 0, &flags, ids, &count);
  ::close(fd);
  return rc == 0 ? static_cast<int>(count) : -1;
}

std::string runCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

bool fillAddr(const std::string& ip, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
    return true;
  }
  return false;
}

}  // namespace nodemesh::testing
