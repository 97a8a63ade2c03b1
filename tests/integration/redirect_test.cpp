// Kernel tests of the same-node socket redirect (bpf/sock_redirect.bpf.c,
// datapath/SockRedirect): real processes in a fresh cgroup talking over
// loopback, with the redirect on and off. Evidence that the bytes skipped
// TCP: the client's tcp_info (tcpi_bytes_acked stays ~0 when its payload
// never became segments), the sockhash holding both ends (looked up by
// 4-tuple, compared with SO_COOKIE), and the per-CPU counters.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "common/system_paths.h"
#include "common/unique_fd.h"
#include "datapath/sock_redirect.h"
#include "kernel_env.h"
#include "nodemesh/redirect_abi.h"

namespace nodemesh::testing {
namespace {

using datapath::SockRedirect;

constexpr std::size_t kLarge = 64u << 20;

// Byte p of stream `seed`: position-dependent, so loss, duplication or
// reordering anywhere shows up as a mismatch at a known offset.
std::uint8_t patternByte(std::uint64_t seed, std::uint64_t p) {
  std::uint64_t z = seed + (p >> 3) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<std::uint8_t>(z >> ((p & 7) * 8));
}

void fillPattern(std::uint64_t seed, std::uint64_t offset, char* buf, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) buf[i] = static_cast<char>(patternByte(seed, offset + i));
}

void setTimeouts(int fd, int sec) {
  timeval tv{sec, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Sends len bytes of stream seed in chunks of varying size (1 B .. 256 KiB),
// so partial sends and message boundaries are exercised.
std::string sendPattern(int fd, std::uint64_t seed, std::size_t len) {
  std::vector<char> buf(256 << 10);
  std::size_t sent = 0, step = 0;
  while (sent < len) {
    std::size_t chunk = std::min<std::size_t>({len - sent, buf.size(), 1 + (step++ * 7919) % buf.size()});
    fillPattern(seed, sent, buf.data(), chunk);
    std::size_t off = 0;
    while (off < chunk) {
      ssize_t n = ::send(fd, buf.data() + off, chunk - off, MSG_NOSIGNAL);
      if (n <= 0) return "send failed at " + std::to_string(sent + off) + ": " + strerrorname_np(errno);
      off += n;
    }
    sent += chunk;
  }
  return "";
}

// Spurious EAGAIN from a blocking recv() on a redirected socket (see
// BlockingRecvMayFailWithEagain): counted, and retried like an app must.
thread_local int spuriousEagain = 0;

// Reads until EOF and checks exactly len bytes of stream seed arrived.
std::string recvPattern(int fd, std::uint64_t seed, std::size_t len) {
  std::vector<char> buf(192 << 10);
  std::size_t got = 0;
  while (true) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EAGAIN && ++spuriousEagain < 1000) continue;
    if (n < 0) return "recv failed at " + std::to_string(got) + ": " + strerrorname_np(errno);
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i)
      if (static_cast<std::uint8_t>(buf[i]) != patternByte(seed, got + i))
        return "byte " + std::to_string(got + i) + " differs";
    got += n;
  }
  return got == len ? "" : "got " + std::to_string(got) + " of " + std::to_string(len) + " bytes before EOF";
}

std::uint64_t sockOpt64(int fd, int opt) {
  std::uint64_t v = 0;
  socklen_t len = sizeof v;
  ::getsockopt(fd, SOL_SOCKET, opt, &v, &len);
  return v;
}

// The sockhash key of fd's end, built the way the BPF programs build it.
nm_redir_key keyOf(int fd) {
  sockaddr_storage l{}, r{};
  socklen_t ll = sizeof l, rl = sizeof r;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&l), &ll);
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&r), &rl);
  nm_redir_key key{};
  key.netns_cookie = sockOpt64(fd, SO_NETNS_COOKIE);
  if (l.ss_family == AF_INET) {
    auto *a = reinterpret_cast<sockaddr_in*>(&l), *b = reinterpret_cast<sockaddr_in*>(&r);
    key.family = NM_FAMILY_V4;
    key.local_addr[0] = a->sin_addr.s_addr;
    key.remote_addr[0] = b->sin_addr.s_addr;
    key.local_port = a->sin_port;
    key.remote_port = b->sin_port;
    return key;
  }
  auto *a = reinterpret_cast<sockaddr_in6*>(&l), *b = reinterpret_cast<sockaddr_in6*>(&r);
  if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && IN6_IS_ADDR_V4MAPPED(&b->sin6_addr)) {
    key.family = NM_FAMILY_V4;
    std::memcpy(&key.local_addr[0], &a->sin6_addr.s6_addr[12], 4);
    std::memcpy(&key.remote_addr[0], &b->sin6_addr.s6_addr[12], 4);
  } else {
    key.family = NM_FAMILY_V6;
    std::memcpy(key.local_addr, &a->sin6_addr, 16);
    std::memcpy(key.remote_addr, &b->sin6_addr, 16);
  }
  key.local_port = a->sin6_port;
  key.remote_port = b->sin6_port;
  return key;
}

nm_redir_key reversed(nm_redir_key k) {
  std::swap(k.local_addr, k.remote_addr);
  std::swap(k.local_port, k.remote_port);
  return k;
}

// Cookie of the socket the sockhash holds under key, or 0.
std::uint64_t lookupCookie(const std::string& pinRoot, const nm_redir_key& key) {
  UniqueFd map(bpf_obj_get((pinRoot + "/maps/nm_redir_socks").c_str()));
  std::uint64_t cookie = 0;
  if (!map || bpf_map_lookup_elem(map.get(), &key, &cookie) != 0) return 0;
  return cookie;
}

bool parseAddr(const std::string& ip, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons(port), len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6, v6->sin6_port = htons(port), len = sizeof *v6;
    return true;
  }
  return false;
}

int listenOn(const std::string& ip, std::uint16_t& port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!parseAddr(ip, 0, ss, len)) return -1;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 16) != 0) return -1;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

int connectTo(const std::string& ip, std::uint16_t port) {
  sockaddr_storage ss;
  socklen_t len;
  if (!parseAddr(ip, port, ss, len)) return -1;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setTimeouts(fd, 20);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Two processes, one connection: the server sends its SO_COOKIE, then reads
// the client's stream to EOF (the client half-closes), then answers with its
// own stream and closes. Runs inside the test cgroup. Result line:
//   "ok pair=<0|1> acked=<client tcpi_bytes_acked> segs=<client data segs out>"
std::string exchange(const std::string& pinRoot, const std::string& listenIp, const std::string& dialIp,
                     std::size_t size) {
  std::uint16_t port = 0;
  int lfd = listenOn(listenIp, port);
  if (lfd < 0) return std::string("listen failed: ") + strerrorname_np(errno);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return "pipe failed";
  pid_t server = ::fork();
  if (server == 0) {
    ::close(report[0]);
    std::string err;
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) err = "accept failed";
    if (err.empty()) {
      setTimeouts(c, 20);
      std::uint64_t cookie = sockOpt64(c, SO_COOKIE);
      if (::send(c, &cookie, sizeof cookie, MSG_NOSIGNAL) != sizeof cookie) err = "server: cookie send failed";
    }
    if (err.empty()) err = recvPattern(c, 1, size);
    if (err.empty()) err = sendPattern(c, 2, size);
    ::close(c);
    err = err.empty() ? "ok" : "server: " + err;
    (void)!::write(report[1], err.data(), err.size());
    ::_exit(0);
  }
  ::close(report[1]);
  ::close(lfd);

  std::ostringstream out;
  std::string err;
  int fd = connectTo(dialIp, port);
  std::uint64_t serverCookie = 0;
  bool pair = false;
  if (fd < 0) err = std::string("connect failed: ") + strerrorname_np(errno);
  if (err.empty() && ::recv(fd, &serverCookie, sizeof serverCookie, MSG_WAITALL) != sizeof serverCookie)
    err = "client: no cookie from the server";
  if (err.empty()) {
    nm_redir_key mine = keyOf(fd);
    pair = lookupCookie(pinRoot, mine) == sockOpt64(fd, SO_COOKIE) &&
           lookupCookie(pinRoot, reversed(mine)) == serverCookie;
    err = sendPattern(fd, 1, size);
  }
  if (err.empty() && ::shutdown(fd, SHUT_WR) != 0) err = "shutdown failed";
  if (err.empty()) err = recvPattern(fd, 2, size);
  tcp_info ti{};
  socklen_t tlen = sizeof ti;
  if (fd >= 0) {
    ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
    ::close(fd);
  }
  std::string serverResult;
  char buf[512];
  ssize_t n;
  while ((n = ::read(report[0], buf, sizeof buf)) > 0) serverResult.append(buf, n);
  ::close(report[0]);
  ::waitpid(server, nullptr, 0);
  if (!err.empty()) return "client: " + err + " / " + serverResult;
  if (serverResult != "ok") return serverResult;
  out << "ok pair=" << pair << " acked=" << ti.tcpi_bytes_acked << " segs=" << ti.tcpi_data_segs_out
      << " client_eagain=" << spuriousEagain;
  return out.str();
}

// A connected pair inside the calling process: {client, server}.
std::pair<int, int> loopbackPair() {
  std::uint16_t port = 0;
  int lfd = listenOn("127.0.0.1", port);
  int c = connectTo("127.0.0.1", port);
  int s = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(lfd);
  setTimeouts(s, 5);
  setTimeouts(c, 5);
  return {c, s};
}

// Application-visible behaviours that differ from plain TCP on a redirected
// socket; the findings of docs/BENCHMARKS.md ("Same-node socket redirect").
// Only data integrity is asserted; the rest is reported, so a kernel that
// changes behaviour shows up in the log rather than as a failure.
std::string probeBehaviours() {
  std::ostringstream out;
  char buf[4096];
  {  // The peer half-closes while we block in recv(): plain TCP returns 0.
    auto [c, s] = loopbackPair();
    ssize_t rc = -2;
    int err = 0;
    std::thread t([&, c = c] { rc = ::recv(c, buf, sizeof buf, 0), err = errno; });
    ::usleep(100 * 1000);
    ::shutdown(s, SHUT_WR);
    t.join();
    out << "blocking_recv_on_peer_fin=" << (rc == 0 ? "eof" : rc < 0 ? strerrorname_np(err) : "data");
    ::close(c), ::close(s);
  }
  {  // We block in recv() while the peer reads what we sent before replying
     // (any request/response client on a blocking socket): plain TCP returns the reply.
    auto [c, s] = loopbackPair();
    std::vector<char> req(4 << 20, 'q');
    std::thread peer([&, s = s] {
      std::vector<char> in(64 << 10);
      std::size_t got = 0;
      ::usleep(50 * 1000);
      while (got < req.size()) {
        ssize_t n = ::recv(s, in.data(), in.size(), 0);
        if (n <= 0) break;
        got += n;
        ::usleep(1000);
      }
      ::send(s, "reply", 5, MSG_NOSIGNAL);
    });
    sendPattern(c, 3, req.size());
    ssize_t rc = ::recv(c, buf, sizeof buf, 0);
    int err = errno;
    out << " blocking_recv_while_peer_reads=" << (rc > 0 ? "reply" : rc == 0 ? "eof" : strerrorname_np(err));
    peer.join();
    ::close(c), ::close(s);
  }
  {  // FIONREAD, MSG_PEEK, SO_RCVLOWAT, splice with redirected bytes queued.
    auto [c, s] = loopbackPair();
    std::string msg(1000, 'p');
    ::send(c, msg.data(), msg.size(), 0);
    ::usleep(10 * 1000);
    int inq = -1;
    ::ioctl(s, FIONREAD, &inq);
    out << " fionread=" << inq << "/1000";
    int lowat = 2000;
    ::setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    pollfd p{s, POLLIN, 0};
    out << " poll_below_rcvlowat=" << (::poll(&p, 1, 50) > 0 ? "readable" : "not_readable");
    lowat = 1;
    ::setsockopt(s, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat);
    ssize_t pk = ::recv(s, buf, 10, MSG_PEEK);
    ssize_t rd = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
    out << " peek_then_read=" << pk << "+" << rd;
    ::send(c, msg.data(), msg.size(), 0);
    ::usleep(10 * 1000);
    int pipefd[2];
    (void)!::pipe(pipefd);
    ssize_t sp = ::splice(s, nullptr, pipefd[1], nullptr, 1000, SPLICE_F_NONBLOCK);
    out << " splice_read=" << (sp >= 0 ? std::to_string(sp) : std::string(strerrorname_np(errno)));
    ::close(pipefd[0]), ::close(pipefd[1]);
    ::close(c), ::close(s);
  }
  {  // MSG_WAITALL across three messages.
    auto [c, s] = loopbackPair();
    std::string msg(1000, 'w');
    for (int i = 0; i < 3; ++i) ::send(c, msg.data(), msg.size(), 0);
    out << " waitall_3x1000=" << ::recv(s, buf, 3000, MSG_WAITALL);
    ::close(c), ::close(s);
  }
  {  // sendfile() into a redirected socket.
    auto [c, s] = loopbackPair();
    char path[] = "/tmp/nm-redir-sendfile-XXXXXX";
    int f = ::mkstemp(path);
    ::unlink(path);
    std::vector<char> data(1 << 20);
    fillPattern(9, 0, data.data(), data.size());
    (void)!::write(f, data.data(), data.size());
    std::string err;
    std::thread t([&, s = s] {
      ::shutdown(s, SHUT_WR);
      err = recvPattern(s, 9, data.size());
    });
    off_t off = 0;
    std::size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::sendfile(c, f, &off, data.size() - sent);
      if (n <= 0) break;
      sent += n;
    }
    ::shutdown(c, SHUT_WR);
    t.join();
    out << " sendfile_1MiB=" << (err.empty() ? "exact" : err);
    ::close(f), ::close(c), ::close(s);
  }
  {  // A reader that never reads: how much does a non-blocking sender queue?
    auto [c, s] = loopbackPair();
    ::fcntl(c, F_SETFL, O_NONBLOCK);
    std::vector<char> chunk(64 << 10, 'x');
    std::size_t queued = 0;
    while (queued < (512u << 20)) {
      ssize_t n = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      queued += n;
    }
    out << " unread_bytes_accepted=" << queued;
    ::close(c), ::close(s);
  }
  return out.str();
}

std::uint64_t field(const std::string& line, const std::string& name) {
  auto at = line.find(" " + name + "=");
  return at == std::string::npos ? ~0ull : std::stoull(line.substr(at + name.size() + 2));
}

class RedirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NM_REQUIRE_ROOT();
    ASSERT_TRUE(ensureBpffs("/sys/fs/bpf").ok());
    static int counter = 0;
    pinRoot_ = "/sys/fs/bpf/nodemesh-test-redir-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    cg_ = std::make_unique<TestCgroup>();
  }
  void TearDown() override {
    if (pinRoot_.empty()) return;
    EXPECT_TRUE(SockRedirect::removePins(pinRoot_).ok());
    for (const char* d : {"/maps", "/links", ""}) ::rmdir((pinRoot_ + d).c_str());
  }

  std::unique_ptr<SockRedirect> load() {
    auto r = SockRedirect::load(pinRoot_);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<SockRedirect> enabled() {
    auto r = load();
    if (!r) return r;
    auto st = r->enable(cg_->absolute());
    EXPECT_TRUE(st.ok()) << st.error().message;
    return r;
  }
  std::string run(const std::string& listenIp, const std::string& dialIp, std::size_t size) {
    std::string res = runInCgroup(cg_->clientPath(), [&] { return exchange(pinRoot_, listenIp, dialIp, size); }, 120);
    if (auto n = field(res, "client_eagain"); n != ~0ull && n > 0)
      std::cout << "note: blocking recv() failed with EAGAIN " << n << " time(s) and was retried: " << res << "\n";
    return res;
  }

  std::string pinRoot_;
  std::unique_ptr<TestCgroup> cg_;
};

TEST_F(RedirectTest, SmallAndLargeTransfersAreByteExactAndSkipTcp) {
  auto r = enabled();
  ASSERT_TRUE(r);
  auto before = r->stats();
  ASSERT_TRUE(before.ok());
  for (std::size_t size : {std::size_t{1}, std::size_t{1000}, kLarge}) {
    SCOPED_TRACE("size " + std::to_string(size));
    std::string res = run("127.0.0.1", "127.0.0.1", size);
    ASSERT_EQ(res.rfind("ok", 0), 0u) << res;
    EXPECT_EQ(field(res, "pair"), 1u) << res;
    // The payload never became segments: only the handshake/FIN moved snd_una.
    EXPECT_LT(field(res, "acked"), 16u) << res;
    EXPECT_EQ(field(res, "segs"), 0u) << res;
  }
  auto after = r->stats();
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->bytesRedirected - before->bytesRedirected, 2 * (kLarge + 1001) + 3 * 8);
  EXPECT_EQ(after->msgsPassed, before->msgsPassed);
  EXPECT_EQ(after->socketsAdded - before->socketsAdded, 6u);
  // Closed sockets left the sockhash by themselves.
  EXPECT_EQ(r->status().sockets.value_or(99), 0u);
}

TEST_F(RedirectTest, Ipv6AndV4MappedPairUp) {
  auto r = enabled();
  ASSERT_TRUE(r);
  std::string v6 = run("::1", "::1", 1 << 20);
  ASSERT_EQ(v6.rfind("ok", 0), 0u) << v6;
  EXPECT_EQ(field(v6, "pair"), 1u) << v6;
  EXPECT_LT(field(v6, "acked"), 16u) << v6;
  // An AF_INET6 client dialing ::ffff:127.0.0.1 must pair with an AF_INET server.
  std::string mapped = run("127.0.0.1", "::ffff:127.0.0.1", 1 << 20);
  ASSERT_EQ(mapped.rfind("ok", 0), 0u) << mapped;
  EXPECT_EQ(field(mapped, "pair"), 1u) << mapped;
  EXPECT_LT(field(mapped, "acked"), 16u) << mapped;
}

TEST_F(RedirectTest, OffMeansPlainTcpAndNoPins) {
  {
    auto r = enabled();
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->disable().ok());
    auto st = r->status();
    EXPECT_FALSE(st.enabled);
    EXPECT_EQ(st.msgProgramId, 0u);
  }
  EXPECT_EQ(attachedPrograms(cg_->absolute(), BPF_CGROUP_SOCK_OPS), 0);
  EXPECT_FALSE(std::filesystem::exists(pinRoot_ + "/links/sockops_redirect"));
  EXPECT_FALSE(std::filesystem::exists(pinRoot_ + "/maps/nm_redir_socks"));
  std::string res = run("127.0.0.1", "127.0.0.1", 4 << 20);
  ASSERT_EQ(res.rfind("ok", 0), 0u) << res;
  EXPECT_EQ(field(res, "pair"), 0u) << res;
  EXPECT_GE(field(res, "acked"), std::uint64_t{4 << 20}) << res;
}

TEST_F(RedirectTest, RestartAdoptsOneAttachmentAndCleanupRemovesPins) {
  std::uint32_t linkId = 0, firstProg = 0;
  {
    auto r = enabled();
    ASSERT_TRUE(r);
    linkId = r->status().sockopsLinkId;
    firstProg = r->status().sockopsProgramId;
    ASSERT_NE(linkId, 0u);
  }  // the agent exits: the pins keep serving
  std::string res = run("127.0.0.1", "127.0.0.1", 1 << 20);
  EXPECT_EQ(field(res, "pair"), 1u) << res;

  auto r = enabled();  // a restarted agent
  ASSERT_TRUE(r);
  auto st = r->status();
  EXPECT_TRUE(st.enabled);
  EXPECT_EQ(st.sockopsLinkId, linkId) << "the pinned link is updated in place, not replaced";
  EXPECT_NE(st.sockopsProgramId, firstProg);
  EXPECT_NE(st.msgProgramId, 0u);
  EXPECT_EQ(attachedPrograms(cg_->absolute(), BPF_CGROUP_SOCK_OPS), 1);
  {
    UniqueFd map(bpf_obj_get((pinRoot_ + "/maps/nm_redir_socks").c_str()));
    __u32 ids[4], count = 4, flags = 0;
    ASSERT_EQ(bpf_prog_query(map.get(), BPF_SK_MSG_VERDICT, 0, &flags, ids, &count), 0);
    EXPECT_EQ(count, 1u);
  }
  res = run("127.0.0.1", "127.0.0.1", 1 << 20);
  EXPECT_EQ(field(res, "pair"), 1u) << res;
  EXPECT_LT(field(res, "acked"), 16u) << res;

  r.reset();
  ASSERT_TRUE(SockRedirect::removePins(pinRoot_).ok());
  EXPECT_EQ(attachedPrograms(cg_->absolute(), BPF_CGROUP_SOCK_OPS), 0);
  for (const char* p : {"/links/sockops_redirect", "/maps/nm_redir_socks", "/maps/nm_redir_cfg", "/maps/nm_redir_stats"})
    EXPECT_FALSE(std::filesystem::exists(pinRoot_ + p)) << p;
}

// A client and server (one process, two sockets) in the cgroup; the test
// process flips the switch while the server has redirected bytes unread.
// Nothing may be lost or reordered: the switch-off moves later bytes to TCP,
// and the socket stays in the sockhash until it closes.
TEST_F(RedirectTest, DisableWithUnreadRedirectedBytesLosesNothing) {
  auto r = enabled();
  ASSERT_TRUE(r);
  int toChild[2], fromChild[2];
  ASSERT_EQ(::pipe(toChild), 0);
  ASSERT_EQ(::pipe(fromChild), 0);
  const std::string cgroup = cg_->clientPath();
  pid_t pid = ::fork();
  if (pid == 0) {
    std::ofstream(cgroup + "/cgroup.procs") << ::getpid() << std::flush;
    std::uint16_t port = 0;
    int lfd = listenOn("127.0.0.1", port);
    int c = connectTo("127.0.0.1", port);
    int s = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    setTimeouts(s, 20);
    constexpr std::size_t kHalf = 256 << 10;
    std::string err = sendPattern(c, 7, kHalf);  // redirected, left unread
    char go = 0;
    (void)!::write(fromChild[1], "s", 1);
    (void)!::read(toChild[0], &go, 1);  // the test disabled the redirect
    std::vector<char> rest(kHalf);
    fillPattern(7, kHalf, rest.data(), kHalf);
    if (err.empty() && ::send(c, rest.data(), kHalf, MSG_NOSIGNAL) != static_cast<ssize_t>(kHalf)) err = "send 2";
    ::shutdown(c, SHUT_WR);
    if (err.empty()) err = recvPattern(s, 7, 2 * kHalf);
    std::string msg = err.empty() ? "ok" : err;
    (void)!::write(fromChild[1], msg.data(), msg.size());
    ::_exit(0);
  }
  char buf[256] = {};
  ASSERT_EQ(::read(fromChild[0], buf, 1), 1);
  auto redirected = r->stats()->msgsRedirected;
  ASSERT_TRUE(r->disable().ok());
  EXPECT_EQ(r->status().sockets.value_or(0), 2u) << "live sockets stay in the sockhash";
  EXPECT_TRUE(std::filesystem::exists(pinRoot_ + "/maps/nm_redir_socks")) << "pins stay while sockets remain";
  ASSERT_EQ(::write(toChild[1], "g", 1), 1);
  pollfd p{fromChild[0], POLLIN, 0};
  ASSERT_GT(::poll(&p, 1, 30000), 0) << "child timed out";
  ssize_t n = ::read(fromChild[0], buf, sizeof buf - 1);
  ::waitpid(pid, nullptr, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "ok");
  EXPECT_EQ(r->stats()->msgsRedirected, redirected) << "nothing redirected after the switch-off";
  // The connection closed: a second disable() finishes the removal.
  ASSERT_TRUE(r->disable().ok());
  EXPECT_FALSE(std::filesystem::exists(pinRoot_ + "/maps/nm_redir_socks"));
  for (int fd : {toChild[0], toChild[1], fromChild[0], fromChild[1]}) ::close(fd);
}

// What applications see that plain TCP would not show them. The probe runs
// with the redirect on and off, so the log shows the difference side by side.
TEST_F(RedirectTest, ApplicationVisibleBehaviours) {
  auto r = enabled();
  ASSERT_TRUE(r);
  std::string on = runInCgroup(cg_->clientPath(), probeBehaviours, 60);
  auto st = r->stats();
  ASSERT_TRUE(r->disable().ok());
  std::string off = runInCgroup(cg_->clientPath(), probeBehaviours, 60);
  std::cout << "redirect on : " << on << "\nredirect off: " << off << "\n";
  RecordProperty("on", on);
  RecordProperty("off", off);
  ASSERT_TRUE(st.ok());
  EXPECT_GT(st->msgsRedirected, 0u);
  for (const auto& res : {on, off}) {
    EXPECT_NE(res.find("peek_then_read=10+1000"), std::string::npos) << res;
    EXPECT_NE(res.find("waitall_3x1000=3000"), std::string::npos) << res;
    EXPECT_NE(res.find("sendfile_1MiB=exact"), std::string::npos) << res;
  }
}

}  // namespace
}  // namespace nodemesh::testing
