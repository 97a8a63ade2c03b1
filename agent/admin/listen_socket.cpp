#include "admin/listen_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace nodemesh::admin {
namespace {

constexpr int kBacklog = 64;
constexpr mode_t kDirMode = 0700;
constexpr mode_t kSocketMode = 0600;

Result<sockaddr_un> makeAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Error{"admin socket path '" + path + "' is empty or longer than " +
                     std::to_string(sizeof(addr.sun_path) - 1) + " bytes",
                 ENAMETOOLONG};
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// mkdir -p with 0700 for what we create; existing directories are left alone
// (the parent may be shared, e.g. /run or a test's temp dir).
Status ensureParentDirectory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return {};
  std::filesystem::path current;
  for (const auto& part : parent) {
    current /= part;
    if (::mkdir(current.c_str(), kDirMode) == 0 || errno == EEXIST) continue;
    return Error::sys("creating directory " + current.string());
  }
  struct stat st {};
  if (::stat(parent.c_str(), &st) != 0) return Error::sys("checking directory " + parent.string());
  if (!S_ISDIR(st.st_mode)) return Error{parent.string() + " is not a directory", ENOTDIR};
  return {};
}

// A socket file left by a crashed agent makes bind fail with EADDRINUSE, so
// remove it, but only after proving nobody is listening: two agents on one
// node would fight over the same BPF pins.
Status removeStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error::sys("checking " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error{path + " exists and is not a socket; refusing to replace it", EEXIST};
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return Error::sys("creating probe socket");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return Error{"another agent is serving " + path, EADDRINUSE};
  }
  const int err = errno;
  // EAGAIN: a listener exists but its backlog is full, so it is alive.
  if (err == EAGAIN) return Error{"another agent is serving " + path, EADDRINUSE};
  if (err != ECONNREFUSED && err != ENOENT) return Error::sys("probing existing socket " + path, err);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::sys("removing stale socket " + path);
  return {};
}

}  // namespace

Result<ListenSocket> openListenSocket(const std::string& path) {
  auto addr = makeAddress(path);
  if (!addr) return addr.error();
  if (auto st = ensureParentDirectory(path); !st) return st.error();
  if (auto st = removeStaleSocket(path, *addr); !st) return st.error();

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("creating admin socket");
  // On Linux bind() creates the file with the socket inode's mode (minus the
  // umask), so setting it first closes the window between bind and chmod
  // during which another user could connect. The chmod below is the
  // portable guarantee.
  (void)::fchmod(fd.get(), kSocketMode);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return Error::sys("binding admin socket " + path);
  }
  ListenSocket sock{std::move(fd)};
  struct stat st {};
  if (::chmod(path.c_str(), kSocketMode) != 0 || ::stat(path.c_str(), &st) != 0) {
    const Error err = Error::sys("setting mode 0600 on " + path);
    ::unlink(path.c_str());
    return err;
  }
  sock.dev = st.st_dev;
  sock.ino = st.st_ino;
  if (::listen(sock.fd.get(), kBacklog) != 0) {
    const Error err = Error::sys("listening on " + path);
    ::unlink(path.c_str());
    return err;
  }
  return sock;
}

void unlinkIfOurs(const std::string& path, const ListenSocket& sock) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISSOCK(st.st_mode) && st.st_dev == sock.dev && st.st_ino == sock.ino) ::unlink(path.c_str());
}

}  // namespace nodemesh::admin
