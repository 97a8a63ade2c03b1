#include "admin/peer_access.h"

#include <sys/socket.h>

namespace nodemesh::admin {

std::optional<uid_t> peerUid(int connFd) {
  struct ucred cred {};
  socklen_t len = sizeof(cred);
  if (::getsockopt(connFd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    return std::nullopt;
  }
  return cred.uid;
}

bool peerAllowed(std::optional<uid_t> peer, std::optional<uid_t> alsoAllowed) {
  if (!peer) return false;
  if (*peer == 0) return true;
  return alsoAllowed && *peer == *alsoAllowed;
}

}  // namespace nodemesh::admin
