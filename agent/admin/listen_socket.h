// Prepares and binds the admin API's listening UNIX socket: the directory,
// stale-socket cleanup, bind, permissions, listen.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nodemesh::admin {

struct ListenSocket {
  UniqueFd fd;   // non-blocking, close-on-exec, listening
  dev_t dev{};   // identity of the socket file we created, so shutdown only
  ino_t ino{};   // unlinks it if no one has replaced it since
};

// Creates missing parent directories (0700), replaces a stale socket file
// (a socket nobody answers on), refuses when a live agent answers there or
// the path is not a socket, then binds with mode 0600 and listens.
Result<ListenSocket> openListenSocket(const std::string& path);

// Unlinks path only if it is still the socket file described by sock.
void unlinkIfOurs(const std::string& path, const ListenSocket& sock);

}  // namespace nodemesh::admin
