#include "datapath/sock_redirect.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>
#include <vector>

#include "common/unique_fd.h"
#include "nodemesh/redirect_abi.h"
#include "sock_redirect.skel.h"

namespace nodemesh::datapath {
namespace {

std::string mapsDir(const std::string& root) { return root + "/maps"; }
std::string linksDir(const std::string& root) { return root + "/links"; }
std::string linkPin(const std::string& root) { return linksDir(root) + "/" + SockRedirect::kLinkName; }

Status makeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error{"creating " + path + ": " + ec.message(), ec.value()};
  return {};
}

template <typename Info>
std::optional<Info> objInfo(int fd) {
  Info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return std::nullopt;
  return info;
}

// Program ids attached to the sockhash for sk_msg (kernel >= 5.19 answers
// BPF_PROG_QUERY on a sockmap; older ones say EINVAL and we report none).
std::vector<std::uint32_t> msgProgramsOf(int mapFd) {
  __u32 ids[4] = {}, count = 4, flags = 0;
  if (bpf_prog_query(mapFd, BPF_SK_MSG_VERDICT, 0, &flags, ids, &count) != 0) return {};
  return {ids, ids + count};
}

// bpf_link__open logs a libbpf warning for a missing pin; absence is normal here.
bpf_link* openPinnedLink(const std::string& pin) {
  if (::access(pin.c_str(), F_OK) != 0) {
    errno = ENOENT;
    return nullptr;
  }
  return bpf_link__open(pin.c_str());
}

Status unpin(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::sys("removing pin " + path);
  return {};
}

}  // namespace

SockRedirect::SockRedirect(std::string pinRoot) : pinRoot_(std::move(pinRoot)) {}

SockRedirect::~SockRedirect() {
  // Our fds only; the pins keep whatever is attached serving.
  if (skel_) sock_redirect__destroy(skel_);
}

Result<std::unique_ptr<SockRedirect>> SockRedirect::load(const std::string& pinRoot) {
  std::unique_ptr<SockRedirect> r(new SockRedirect(pinRoot));
  if (auto st = makeDirs(mapsDir(pinRoot)); !st) return st.error();
  if (auto st = makeDirs(linksDir(pinRoot)); !st) return st.error();

  const std::string maps = mapsDir(pinRoot);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps.c_str());
  r->skel_ = sock_redirect__open_opts(&opts);
  if (!r->skel_) return Error::sys("opening the socket-redirect BPF object");
  if (int err = sock_redirect__load(r->skel_); err != 0)
    return Error::sys("loading the socket-redirect BPF programs (sockops, sk_msg; see libbpf messages above; "
                      "pinned nm_redir_* maps under " + maps + " from an incompatible build are refused: "
                      "remove them with nodemesh-agent --cleanup)",
                      -err);
  r->numCpus_ = libbpf_num_possible_cpus();
  if (r->numCpus_ <= 0) return Error::sys("counting possible CPUs", -r->numCpus_);
  return r;
}

Status SockRedirect::setSwitch(bool on) {
  const __u32 zero = 0;
  nm_redir_config cfg{};
  cfg.flags = on ? NM_REDIR_F_ENABLED : 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.nm_redir_cfg), &zero, &cfg, BPF_ANY) != 0)
    return Error::sys(std::string("turning socket redirect ") + (on ? "on" : "off") + " (writing nm_redir_cfg)");
  return {};
}

Status SockRedirect::enable(const std::string& cgroupPath) {
  UniqueFd cg(::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return Error::sys("opening cgroup " + cgroupPath + " (does it exist under the cgroup2 mount?)");
  struct stat st {};
  if (::fstat(cg.get(), &st) != 0) return Error::sys("stat " + cgroupPath);
  const std::uint64_t cgroupId = st.st_ino;  // a cgroup2 directory's inode is its id

  // The verdict program first: a socket takes the map's programs when it is
  // inserted, so one inserted before this would never be redirected.
  const int mapFd = bpf_map__fd(skel_->maps.nm_redir_socks);
  if (bpf_prog_attach(bpf_program__fd(skel_->progs.nm_redir_msg), mapFd, BPF_SK_MSG_VERDICT, 0) != 0)
    return Error::sys("attaching the sk_msg program to the sockhash nm_redir_socks");
  if (auto s = setSwitch(true); !s) return s;

  const std::string pin = linkPin(pinRoot_);
  bpf_program* prog = skel_->progs.nm_redir_sockops;
  if (bpf_link* old = openPinnedLink(pin)) {
    auto info = objInfo<bpf_link_info>(bpf_link__fd(old));
    if (info && info->type == BPF_LINK_TYPE_CGROUP && info->cgroup.cgroup_id == cgroupId) {
      int rc = bpf_link__update_program(old, prog);
      int err = errno;
      bpf_link__destroy(old);  // the pin keeps it
      if (rc != 0) return Error::sys("replacing the program of pinned link " + pin, err);
      return {};
    }
    spdlog::info("pinned sockops_redirect link belongs to another cgroup; detaching it");
    bpf_link__unpin(old);
    bpf_link__detach(old);
    bpf_link__destroy(old);
  }
  bpf_link* link = bpf_program__attach_cgroup(prog, cg.get());
  if (!link) return Error::sys("attaching the sockops redirect program to cgroup " + cgroupPath);
  int err = bpf_link__pin(link, pin.c_str());
  bpf_link__destroy(link);  // on success the pin holds the attachment; on failure this detaches
  if (err != 0) return Error::sys("pinning link at " + pin, -err);
  return {};
}

Status SockRedirect::detachMsgPrograms() {
  const int mapFd = bpf_map__fd(skel_->maps.nm_redir_socks);
  for (std::uint32_t id : msgProgramsOf(mapFd)) {
    UniqueFd prog(bpf_prog_get_fd_by_id(id));
    if (!prog) continue;  // gone meanwhile
    if (bpf_prog_detach2(prog.get(), mapFd, BPF_SK_MSG_VERDICT) != 0 && errno != ENOENT)
      return Error::sys("detaching sk_msg program " + std::to_string(id) + " from nm_redir_socks");
  }
  // Kernels that cannot list it: detach ours by fd (ENOENT when another is attached).
  if (bpf_prog_detach2(bpf_program__fd(skel_->progs.nm_redir_msg), mapFd, BPF_SK_MSG_VERDICT) != 0 &&
      errno != ENOENT && errno != EINVAL)
    return Error::sys("detaching the sk_msg program from nm_redir_socks");
  return {};
}

Status SockRedirect::disable() {
  // Switch first: from here every loaded copy passes messages to TCP, which
  // is order-safe on connections that were redirected so far.
  if (auto s = setSwitch(false); !s) return s;

  const std::string pin = linkPin(pinRoot_);
  if (bpf_link* link = openPinnedLink(pin)) {
    bpf_link__unpin(link);
    bpf_link__detach(link);
    bpf_link__destroy(link);
  } else if (errno != ENOENT) {
    return Error::sys("opening pinned link " + pin);
  }
  if (auto s = detachMsgPrograms(); !s) return s;

  auto sockets = countSockets();
  if (!sockets) return sockets.error();
  if (*sockets > 0) {
    spdlog::info("socket redirect off; {} sockets of earlier connections remain in nm_redir_socks until they close "
                 "(their new messages use TCP); its pins stay until then",
                 *sockets);
    return {};
  }
  for (const char* name : kMapNames)
    if (auto s = unpin(mapsDir(pinRoot_) + "/" + name); !s) return s;
  return {};
}

Result<std::uint32_t> SockRedirect::countSockets() const {
  const int fd = bpf_map__fd(skel_->maps.nm_redir_socks);
  nm_redir_key key{}, next{};
  const nm_redir_key* prev = nullptr;
  std::uint32_t n = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    ++n;
    key = next;
    prev = &key;
    if (n > NM_MAX_REDIR_SOCKETS) break;  // entries churn under us; a count is all we promise
  }
  if (errno != ENOENT && n <= NM_MAX_REDIR_SOCKETS) return Error::sys("iterating nm_redir_socks");
  return n;
}

Result<RedirectStats> SockRedirect::stats() const {
  const __u32 zero = 0;
  std::vector<nm_redir_stats> perCpu(numCpus_);
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.nm_redir_stats), &zero, perCpu.data()) != 0)
    return Error::sys("reading socket-redirect counters (nm_redir_stats)");
  RedirectStats out;
  for (const auto& c : perCpu) {
    out.socketsAdded += c.sockets_added;
    out.socketsSkipped += c.sockets_skipped;
    out.insertErrors += c.insert_errors;
    out.msgsRedirected += c.msgs_redirected;
    out.bytesRedirected += c.bytes_redirected;
    out.msgsPassed += c.msgs_passed;
    out.msgsPinnedTcp += c.msgs_pinned_tcp;
  }
  return out;
}

RedirectStatus SockRedirect::status() const {
  RedirectStatus out;
  const __u32 zero = 0;
  nm_redir_config cfg{};
  bool on = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.nm_redir_cfg), &zero, &cfg) == 0 &&
            (cfg.flags & NM_REDIR_F_ENABLED);
  if (bpf_link* link = openPinnedLink(linkPin(pinRoot_))) {
    if (auto info = objInfo<bpf_link_info>(bpf_link__fd(link))) {
      out.sockopsLinkId = info->id;
      out.sockopsProgramId = info->prog_id;
      if (info->type == BPF_LINK_TYPE_CGROUP) out.cgroupId = info->cgroup.cgroup_id;
    }
    bpf_link__destroy(link);
  }
  auto msg = msgProgramsOf(bpf_map__fd(skel_->maps.nm_redir_socks));
  if (!msg.empty()) out.msgProgramId = msg.front();
  out.enabled = on && out.sockopsLinkId != 0;
  if (auto n = countSockets()) out.sockets = *n;
  return out;
}

Status SockRedirect::removePins(const std::string& pinRoot) {
  // The link first, so no socket is added while the maps go. Detached
  // explicitly: the kernel releases an unpinned link asynchronously.
  if (bpf_link* link = openPinnedLink(linkPin(pinRoot))) {
    bpf_link__detach(link);
    bpf_link__destroy(link);
  }
  if (auto s = unpin(linkPin(pinRoot)); !s) return s;
  for (const char* name : kMapNames)
    if (auto s = unpin(mapsDir(pinRoot) + "/" + name); !s) return s;
  return {};
}

}  // namespace nodemesh::datapath
