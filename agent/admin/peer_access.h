// Who may talk to the admin API. The socket's 0600 mode already keeps others
// out; SO_PEERCRED is the second lock, in case the mode or the directory is
// loosened by hand or the socket is bind-mounted somewhere else.
#pragma once

#include <sys/types.h>

#include <optional>

namespace nodemesh::admin {

inline constexpr const char* kRootOnlyMessage = "the admin API is root-only";

// The connecting process's uid, or nullopt if the kernel would not say.
std::optional<uid_t> peerUid(int connFd);

// The decision, kept pure so it is testable without a second user:
// root is always allowed; alsoAllowed lets tests (which may run unprivileged)
// admit their own uid. Unknown credentials are refused.
bool peerAllowed(std::optional<uid_t> peer, std::optional<uid_t> alsoAllowed = std::nullopt);

}  // namespace nodemesh::admin
