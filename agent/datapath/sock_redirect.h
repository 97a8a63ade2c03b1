// Same-node socket redirect (bpf/sock_redirect.bpf.c): a sockops program on a
// cgroup puts established local TCP sockets in a sockhash; an sk_msg program
// attached to that sockhash moves each sendmsg() straight to the peer socket.
//
// Pins under the root (same layout as SocketLb):
//   links/sockops_redirect   the sockops cgroup link
//   maps/nm_redir_socks      the sockhash; the sk_msg program is attached to
//                            the map (BPF_SK_MSG_VERDICT), so this pin is what
//                            keeps it attached while no agent runs
//   maps/nm_redir_cfg        the on/off switch every loaded copy of the programs reads
//   maps/nm_redir_stats      per-CPU counters
//
// Agent wiring (MeshSettings::socketRedirect):
//   on start and on every applied snapshot:
//     auto r = SockRedirect::load(pinRoot);            // reuses the pins
//     socketRedirect ? r->enable(servedCgroup) : r->disable();
//   --cleanup: SocketLb::removePins (removes these pins too) or
//     SockRedirect::removePins(pinRoot) for these alone.
// enable() and disable() are idempotent; the object may be kept or dropped
// afterwards (closing it leaves the pinned state as it is).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

struct sock_redirect;  // generated skeleton

namespace nodemesh::datapath {

struct RedirectStats {
  std::uint64_t socketsAdded = 0;    // local sockets put in the sockhash
  std::uint64_t socketsSkipped = 0;  // local, but data was sent before established (TFO)
  std::uint64_t insertErrors = 0;    // sockhash full
  std::uint64_t msgsRedirected = 0;  // sendmsg() calls that skipped TCP/IP
  std::uint64_t bytesRedirected = 0;
  std::uint64_t msgsPassed = 0;      // peer not in the sockhash: TCP (that socket stays on TCP)
  std::uint64_t msgsPinnedTcp = 0;   // on TCP: the socket passed before, or the switch is off
};

struct RedirectStatus {
  bool enabled = false;              // switch on and the sockops link pinned
  std::uint64_t cgroupId = 0;        // of the pinned sockops link (0: none)
  std::uint32_t sockopsProgramId = 0;
  std::uint32_t sockopsLinkId = 0;
  std::uint32_t msgProgramId = 0;    // attached to the sockhash (0: none)
  std::optional<std::uint32_t> sockets;  // sockhash entries (both ends of each connection)
};

class SockRedirect {
 public:
  static constexpr const char* kLinkName = "sockops_redirect";
  static constexpr const char* kMapNames[] = {"nm_redir_socks", "nm_redir_cfg", "nm_redir_stats"};

  ~SockRedirect();
  SockRedirect(const SockRedirect&) = delete;
  SockRedirect& operator=(const SockRedirect&) = delete;

  // Loads both programs with the pinned maps (creating and pinning them the
  // first time). Attaches nothing.
  static Result<std::unique_ptr<SockRedirect>> load(const std::string& pinRoot);

  // Attaches the sk_msg program to the sockhash (replacing the one an earlier
  // agent attached: the map holds one), turns the switch on, and attaches the
  // sockops program to cgroupPath. A pinned link on that cgroup gets the new
  // program in place (bpf_link_update: no gap, never two attachments); one on
  // another cgroup is detached first. Connections established before this
  // call stay on TCP.
  Status enable(const std::string& cgroupPath);

  // New connections use TCP, and so do the further messages of connections
  // redirected so far: the switch goes off, the sockops link is detached and
  // unpinned, the sk_msg program is detached from the sockhash. Sockets are
  // not removed from the sockhash (the kernel would drop bytes they have
  // queued and not yet read); they leave it as they close. The map pins are
  // removed once the sockhash is empty; until then call disable() again later
  // (e.g. on each reload while off) to finish. Safe when nothing is attached.
  Status disable();

  Result<RedirectStats> stats() const;
  RedirectStatus status() const;

  // Removes the link pin (detaching sockops), then the map pins. The kernel
  // then frees the sockhash, which takes every socket out of it: bytes a
  // redirected connection has queued but not read are lost. disable() first
  // and wait for stats()/status().sockets to reach 0 to avoid that.
  static Status removePins(const std::string& pinRoot);

 private:
  explicit SockRedirect(std::string pinRoot);
  Status setSwitch(bool on);
  Status detachMsgPrograms();
  Result<std::uint32_t> countSockets() const;

  std::string pinRoot_;
  sock_redirect* skel_ = nullptr;
  int numCpus_ = 1;
};

}  // namespace nodemesh::datapath
