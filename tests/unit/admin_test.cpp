// The admin server over real UNIX sockets: framing, error answers, timeouts,
// socket-file lifecycle, and a round trip through meshctl's client.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "admin/http_message.h"
#include "admin/peer_access.h"
#include "admin_client.h"
#include "commands.h"
#include "render.h"

namespace nodemesh::admin {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nm-admin-test-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    if (dir == nullptr) std::abort();
    path_ = dir;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

UniqueFd connectUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  return fd;
}

void sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early (431); the answer tells
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Everything until EOF, or what arrived before the timeout.
std::string readAll(int fd, std::chrono::milliseconds timeout = 3s) {
  std::string out;
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return out;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

std::string httpExchange(const std::string& path, std::string_view request) {
  UniqueFd fd = connectUnix(path);
  if (!fd) return "connect failed: " + std::string(std::strerror(errno));
  sendAll(fd.get(), request);
  return readAll(fd.get());
}

std::string statusLine(const std::string& raw) { return raw.substr(0, raw.find("\r\n")); }
std::string bodyOf(const std::string& raw) {
  const auto pos = raw.find("\r\n\r\n");
  return pos == std::string::npos ? "" : raw.substr(pos + 4);
}

AdminServerOptions testOptions(std::chrono::milliseconds timeout = 2000ms) {
  AdminServerOptions options;
  options.clientTimeout = timeout;
  // Unprivileged test runs must still be admitted; as root this stays unset
  // so the production rule (root only) is what is exercised.
  if (::geteuid() != 0) options.alsoAllowUid = ::geteuid();
  return options;
}

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = dir_.path() + "/admin.sock"; }

  Handler handler() {
    return [this](std::string_view method, std::string_view path) -> Response {
      ++calls_;
      if (path == "/v1/status") return {200, R"({"ok":true,"method":")" + std::string(method) + "\"}"};
      if (path == "/big") return {200, "\"" + std::string(4 * 1024 * 1024, 'x') + "\""};
      if (path == "/throw") throw std::runtime_error("boom");
      return errorResponse(404, "unknown path " + std::string(path));
    };
  }

  std::unique_ptr<AdminServer> startServer(std::chrono::milliseconds timeout = 2000ms) {
    auto server = AdminServer::start(path_, handler(), testOptions(timeout));
    EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().message);
    return server.ok() ? std::move(server.value()) : nullptr;
  }

  TempDir dir_;
  std::string path_;
  std::atomic<int> calls_{0};
};

TEST_F(AdminServerTest, AnswersWithHandlerBodyAndHttpFraming) {
  auto server = startServer();
  ASSERT_TRUE(server);
  const std::string raw = httpExchange(path_, "GET /v1/status HTTP/1.0\r\nHost: agent\r\n\r\n");
  const std::string body = R"({"ok":true,"method":"GET"})";
  EXPECT_EQ(raw, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
}

TEST_F(AdminServerTest, Http11AndExtraBytesAfterHeadAreAccepted) {
  auto server = startServer();
  ASSERT_TRUE(server);
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /v1/status HTTP/1.1\r\nHost: a\r\nUser-Agent: curl\r\n\r\nxyz")),
            "HTTP/1.0 200 OK");
}

TEST_F(AdminServerTest, UnknownPathIsTheHandlers404) {
  auto server = startServer();
  ASSERT_TRUE(server);
  const std::string raw = httpExchange(path_, "GET /v2/nope HTTP/1.0\r\n\r\n");
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 404 Not Found");
  EXPECT_EQ(nlohmann::json::parse(bodyOf(raw)).at("error"), "unknown path /v2/nope");
}

TEST_F(AdminServerTest, MalformedRequestLinesGet400WithoutCallingHandler) {
  auto server = startServer();
  ASSERT_TRUE(server);
  const std::string bad[] = {
      "GET /v1/status\r\n\r\n",          "GET  /v1/status HTTP/1.0\r\n\r\n", "get /v1/status HTTP/1.0\r\n\r\n",
      "GET v1/status HTTP/1.0\r\n\r\n",  "GET /v1/status HTTP/2.0\r\n\r\n",  "GET /v1/status HTTP/1.0 x\r\n\r\n",
      "GET /v1/\x01 HTTP/1.0\r\n\r\n",   std::string("\0\xff\r\n\r\n", 6),    "\r\n\r\n",
      "GET /v1/status HTTP/1.0\r\nno colon here\r\n\r\n",
  };
  for (const auto& request : bad) {
    const std::string raw = httpExchange(path_, request);
    EXPECT_EQ(statusLine(raw), "HTTP/1.0 400 Bad Request") << request;
    const auto body = nlohmann::json::parse(bodyOf(raw), nullptr, false);
    EXPECT_TRUE(body.is_object() && body.contains("error")) << raw;
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(AdminServerTest, OversizeHeadGets431) {
  auto server = startServer();
  ASSERT_TRUE(server);
  const std::string raw = httpExchange(path_, "GET /v1/status HTTP/1.0\r\nX-Pad: " + std::string(9000, 'a'));
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 431 Request Header Fields Too Large");
  EXPECT_EQ(calls_, 0);
}

TEST_F(AdminServerTest, HandlerExceptionBecomes500AndServerKeepsServing) {
  auto server = startServer();
  ASSERT_TRUE(server);
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /throw HTTP/1.0\r\n\r\n")), "HTTP/1.0 500 Internal Server Error");
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /v1/status HTTP/1.0\r\n\r\n")), "HTTP/1.0 200 OK");
}

TEST_F(AdminServerTest, LargeBodyLargerThanSocketBufferArrivesWhole) {
  auto server = startServer();
  ASSERT_TRUE(server);
  const std::string raw = httpExchange(path_, "GET /big HTTP/1.0\r\n\r\n");
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 200 OK");
  EXPECT_EQ(bodyOf(raw).size(), 4u * 1024 * 1024 + 2);
}

TEST_F(AdminServerTest, SilentClientDoesNotBlockASecondClient) {
  auto server = startServer();
  ASSERT_TRUE(server);
  UniqueFd silent = connectUnix(path_);
  ASSERT_TRUE(silent);
  UniqueFd trickler = connectUnix(path_);
  ASSERT_TRUE(trickler);
  sendAll(trickler.get(), "GET /v1/st");

  const auto start = Clock::now();
  const std::string raw = httpExchange(path_, "GET /v1/status HTTP/1.0\r\n\r\n");
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 200 OK");
  EXPECT_LT(Clock::now() - start, 1s);  // well inside the 2 s client timeout

  // The silent client is still connected and unanswered.
  pollfd p{silent.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST_F(AdminServerTest, SilentClientIsClosedAfterTheTimeout) {
  auto server = startServer(300ms);
  ASSERT_TRUE(server);
  UniqueFd silent = connectUnix(path_);
  ASSERT_TRUE(silent);
  const auto start = Clock::now();
  const std::string raw = readAll(silent.get(), 3s);
  const auto took = Clock::now() - start;
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 408 Request Timeout");
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 2s);
}

TEST_F(AdminServerTest, TricklingClientDoesNotExtendItsDeadline) {
  auto server = startServer(300ms);
  ASSERT_TRUE(server);
  UniqueFd trickler = connectUnix(path_);
  ASSERT_TRUE(trickler);
  const auto start = Clock::now();
  const std::string head = "GET /v1/status HTTP/1.0\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  for (char c : head) {
    if (::send(trickler.get(), &c, 1, MSG_NOSIGNAL) != 1) break;  // closed on us: expected
    std::this_thread::sleep_for(20ms);
    if (Clock::now() - start > 2s) break;
  }
  const std::string raw = readAll(trickler.get(), 1s);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(statusLine(raw), "HTTP/1.0 408 Request Timeout");
  EXPECT_EQ(calls_, 0);
}

TEST_F(AdminServerTest, ClientThatHangsUpEarlyDoesNotHurtTheServer) {
  auto server = startServer();
  ASSERT_TRUE(server);
  for (int i = 0; i < 20; ++i) {
    UniqueFd fd = connectUnix(path_);
    sendAll(fd.get(), i % 2 ? "GET /big HTTP/1.0\r\n\r\n" : "GET /v1/st");
  }  // each closed without reading
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /v1/status HTTP/1.0\r\n\r\n")), "HTTP/1.0 200 OK");
}

TEST_F(AdminServerTest, CreatesParentDirectory0700AndSocket0600) {
  path_ = dir_.path() + "/run/nodemesh/admin.sock";
  auto server = startServer();
  ASSERT_TRUE(server);
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() + "/run/nodemesh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AdminServerTest, StaleSocketFileIsReplaced) {
  {
    // A socket file nobody listens on, as a crashed agent leaves behind.
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_TRUE(std::filesystem::is_socket(path_));
  auto server = startServer();
  ASSERT_TRUE(server);
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /v1/status HTTP/1.0\r\n\r\n")), "HTTP/1.0 200 OK");
}

TEST_F(AdminServerTest, SecondServerOnALiveSocketFailsClearly) {
  auto first = startServer();
  ASSERT_TRUE(first);
  auto second = AdminServer::start(path_, handler(), testOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("another agent is serving " + path_), std::string::npos)
      << second.error().message;
  // The first one is untouched.
  EXPECT_EQ(statusLine(httpExchange(path_, "GET /v1/status HTTP/1.0\r\n\r\n")), "HTTP/1.0 200 OK");
}

TEST_F(AdminServerTest, RefusesToReplaceANonSocketFile) {
  std::ofstream(path_) << "precious";
  auto server = AdminServer::start(path_, handler(), testOptions());
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("not a socket"), std::string::npos) << server.error().message;
  std::ifstream in(path_);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(AdminServerTest, TooLongPathFails) {
  auto server = AdminServer::start(dir_.path() + "/" + std::string(200, 'x'), handler(), testOptions());
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("longer than"), std::string::npos) << server.error().message;
}

TEST_F(AdminServerTest, DestructorUnlinksTheSocketPromptlyEvenWithClientsConnected) {
  auto server = startServer();
  ASSERT_TRUE(server);
  UniqueFd silent = connectUnix(path_);
  ASSERT_TRUE(std::filesystem::exists(path_));
  const auto start = Clock::now();
  server.reset();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_EQ(readAll(silent.get(), 1s), "");  // closed, unanswered
}

TEST_F(AdminServerTest, DestructorLeavesAReplacedSocketAlone) {
  auto server = startServer();
  ASSERT_TRUE(server);
  // Someone (a newer agent) replaced the file; shutting down the old one
  // must not delete the new one's socket.
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  std::ofstream(path_) << "new";
  server.reset();
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST(PeerAccessTest, OnlyRootOrTheExplicitlyAllowedUid) {
  EXPECT_TRUE(peerAllowed(0u));
  EXPECT_FALSE(peerAllowed(1000u));
  EXPECT_FALSE(peerAllowed(std::nullopt));
  EXPECT_TRUE(peerAllowed(1000u, 1000u));
  EXPECT_FALSE(peerAllowed(1001u, 1000u));
  EXPECT_FALSE(peerAllowed(std::nullopt, 1000u));
  EXPECT_TRUE(peerAllowed(0u, 1000u));
}

TEST_F(AdminServerTest, NonRootPeerGets403) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  AdminServerOptions options;  // production rule: root only
  auto server = AdminServer::start(path_, handler(), options);
  ASSERT_TRUE(server.ok()) << server.error().message;
  // Open the file modes so that only SO_PEERCRED stands in the way.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe calls here: the parent has other threads.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.c_str(), path_.size());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) ::_exit(11);
    const char request[] = "GET /v1/status HTTP/1.0\r\n\r\n";
    if (::write(fd, request, sizeof(request) - 1) != sizeof(request) - 1) ::_exit(12);
    char buf[512] = {};
    std::size_t got = 0;
    for (ssize_t n; got < sizeof(buf) - 1 && (n = ::read(fd, buf + got, sizeof(buf) - 1 - got)) > 0;) got += n;
    const bool forbidden = std::strstr(buf, "HTTP/1.0 403 Forbidden") != nullptr &&
                           std::strstr(buf, "the admin API is root-only") != nullptr;
    ::_exit(forbidden ? 0 : 13);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(calls_, 0);
}

// --- round trips through meshctl's client ---------------------------------

TEST_F(AdminServerTest, MeshctlClientRoundTrip) {
  auto server = startServer();
  ASSERT_TRUE(server);
  auto body = cli::fetch(path_, "/v1/status");
  ASSERT_TRUE(body.ok()) << body.error().message;
  EXPECT_EQ(*body, R"({"ok":true,"method":"GET"})");

  auto missing = cli::fetch(path_, "/v9/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("unknown path /v9/missing"), std::string::npos)
      << missing.error().message;
  EXPECT_NE(missing.error().message.find("404"), std::string::npos);

  auto big = cli::fetch(path_, "/big");
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->size(), 4u * 1024 * 1024 + 2);
}

TEST_F(AdminServerTest, MeshctlJsonOutputIsPrettyPrinted) {
  auto server = startServer();
  ASSERT_TRUE(server);
  std::ostringstream out, err;
  const int rc = cli::runQuery({path_, 2000ms}, "/v1/status", cli::OutputFormat::kJson, cli::renderNodeStatus,
                               out, err);
  EXPECT_EQ(rc, 0) << err.str();
  // The agent's field order is kept, not sorted.
  EXPECT_EQ(out.str(), "{\n  \"ok\": true,\n  \"method\": \"GET\"\n}\n");
  EXPECT_EQ(err.str(), "");
}

TEST_F(AdminServerTest, MeshctlReportsAgentErrorsOnOneLine) {
  auto server = startServer();
  ASSERT_TRUE(server);
  std::ostringstream out, err;
  const int rc = cli::runQuery({path_, 2000ms}, "/throw", cli::OutputFormat::kText, cli::renderNodeStatus, out, err);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out.str(), "");
  const std::string e = err.str();  // str() copies: iterate one string
  EXPECT_EQ(e.rfind("meshctl: ", 0), 0u) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

TEST_F(AdminServerTest, MeshctlClientTimesOutOnAnAgentThatNeverAnswers) {
  // A listener that never accepts: connect succeeds via the backlog, then
  // nothing is ever sent back.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd.get(), 4), 0);
  const auto start = Clock::now();
  auto body = cli::fetch(path_, "/v1/status", 200ms);
  EXPECT_LT(Clock::now() - start, 2s);
  ASSERT_FALSE(body.ok());
  EXPECT_NE(body.error().message.find("did not answer within 200ms"), std::string::npos) << body.error().message;
}

}  // namespace
}  // namespace nodemesh::admin
