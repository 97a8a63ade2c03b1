#include "datapath/socket_lb.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstring>
#include <filesystem>

#include "sock_lb.skel.h"

namespace nodemesh::datapath {
namespace {

int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  while (n > 0 && static_cast<std::size_t>(n) <= sizeof buf && (buf[n - 1] == '\n')) buf[--n] = '\0';
  if (level == LIBBPF_WARN)
    spdlog::warn("libbpf: {}", buf);
  else
    spdlog::info("libbpf: {}", buf);
  return 0;
}

Status makeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Error{"creating " + path + ": " + ec.message(), ec.value()};
  return {};
}

struct Hook {
  const char* name;
  bpf_program* prog;
};

std::vector<Hook> hooksOf(const sock_lb& s) {
  return {{"connect4", s.progs.nm_connect4},         {"connect6", s.progs.nm_connect6},
          {"sendmsg4", s.progs.nm_sendmsg4},         {"sendmsg6", s.progs.nm_sendmsg6},
          {"recvmsg4", s.progs.nm_recvmsg4},         {"recvmsg6", s.progs.nm_recvmsg6},
          {"getpeername4", s.progs.nm_getpeername4}, {"getpeername6", s.progs.nm_getpeername6},
          {"sockops", s.progs.nm_sockops},           {"ingress", s.progs.nm_ingress}};
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

// The cookie of the network namespace the calling thread is in.
Result<std::uint64_t> currentNetnsCookie() {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys("socket for SO_NETNS_COOKIE");
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
    return Error::sys("reading this network namespace's cookie (SO_NETNS_COOKIE)");
  return cookie;
}

Result<bpf_link_info> linkInfo(int fd) {
  bpf_link_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return Error::sys("reading BPF link info");
  return info;
}

std::uint32_t progId(int fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Iterates every key of a hash map.
template <typename K, typename F>
Status forEachKey(int fd, const char* mapName, F&& f) {
  K key{}, next{};
  const K* prev = nullptr;
  while (true) {
    if (bpf_map_get_next_key(fd, prev, &next) != 0) {
      if (errno == ENOENT) return {};
      return Error::sys(std::string("iterating map ") + mapName);
    }
    key = next;
    prev = &key;
    if (auto st = f(key); !st) return st;
  }
}

}  // namespace

SocketLb::SocketLb(std::string pinRoot) : pins_(std::move(pinRoot)) {}

SocketLb::~SocketLb() {
  // Closing our fds leaves pinned links attached: that is what keeps the
  // datapath serving while no agent runs.
  for (auto* link : links_) bpf_link__destroy(link);
  if (skel_) sock_lb__destroy(skel_);
}

Result<std::unique_ptr<SocketLb>> SocketLb::load(const std::string& pinRoot) {
  libbpf_set_print(libbpfPrint);
  std::unique_ptr<SocketLb> lb(new SocketLb(pinRoot));
  if (auto st = makeDirs(lb->pins_.maps()); !st) return st.error();
  if (auto st = makeDirs(lb->pins_.links()); !st) return st.error();

  const std::string mapsDir = lb->pins_.maps();
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = mapsDir.c_str());
  lb->skel_ = sock_lb__open_opts(&opts);
  if (!lb->skel_) return Error::sys("opening the socket-LB BPF object");
  if (int err = sock_lb__load(lb->skel_); err != 0)
    return Error::sys("loading the socket-LB BPF programs (see libbpf messages above; pinned maps under " + mapsDir +
                          " from an incompatible build are refused: remove them with nodemesh-agent --cleanup)",
                      -err);
  lb->numCpus_ = libbpf_num_possible_cpus();
  if (lb->numCpus_ <= 0) return Error::sys("counting possible CPUs", -lb->numCpus_);
  auto cookie = currentNetnsCookie();
  if (!cookie) return cookie.error();
  lb->hostNetnsCookie_ = *cookie;
  int captureFd = ::fcntl(bpf_map__fd(lb->skel_->maps.nm_capture), F_DUPFD_CLOEXEC, 3);
  if (captureFd < 0) return Error::sys("duplicating the capture map fd");
  lb->capture_ = std::make_shared<CaptureTable>(UniqueFd(captureFd));
  return lb;
}

Status SocketLb::attach(const std::string& cgroupPath, const std::string& displayName) {
  UniqueFd cg(::open(cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg) return Error::sys("opening cgroup " + cgroupPath + " (does node.cgroup exist under the cgroup2 mount?)");
  struct stat st {};
  if (::fstat(cg.get(), &st) != 0) return Error::sys("stat " + cgroupPath);
  const std::uint64_t cgroupId = st.st_ino;  // a cgroup2 directory's inode is its id

  for (auto* link : links_) bpf_link__destroy(link);
  links_.clear();
  programs_.clear();

  for (const auto& hook : hooksOf(*skel_)) {
    bpf_program* prog = hook.prog;
    const std::string pin = pins_.link(hook.name);
    bpf_link* link = nullptr;

    // (Checked first: libbpf warns about a missing pin, which is the normal first start.)
    bpf_link* old = ::access(pin.c_str(), F_OK) == 0 ? bpf_link__open(pin.c_str()) : nullptr;
    if (old) {
      auto info = linkInfo(bpf_link__fd(old));
      if (info && info->type == BPF_LINK_TYPE_CGROUP && info->cgroup.cgroup_id == cgroupId) {
        // Same cgroup: swap the program under the existing link atomically.
        if (bpf_link__update_program(old, prog) != 0) {
          int err = errno;
          bpf_link__destroy(old);
          return Error::sys("replacing the program of pinned link " + pin, err);
        }
        link = old;
      } else {
        spdlog::info("pinned {} link belongs to another cgroup; detaching it", hook.name);
        bpf_link__unpin(old);
        bpf_link__destroy(old);
      }
    }
    if (!link) {
      link = bpf_program__attach_cgroup(prog, cg.get());
      if (!link) return Error::sys(std::string("attaching ") + hook.name + " to cgroup " + cgroupPath);
      if (int err = bpf_link__pin(link, pin.c_str()); err != 0) {
        bpf_link__destroy(link);
        return Error::sys("pinning link at " + pin, -err);
      }
    }
    links_.push_back(link);
    AttachedProgram ap{hook.name, displayName, progId(bpf_program__fd(prog)), 0, pin};
    if (auto info = linkInfo(bpf_link__fd(link))) ap.linkId = info->id;
    programs_.push_back(std::move(ap));
  }
  return {};
}

Result<InstalledState> SocketLb::readInstalled() const {
  InstalledState out;
  const int svcFd = bpf_map__fd(skel_->maps.nm_services);
  const int slotFd = bpf_map__fd(skel_->maps.nm_slots);
  const int beFd = bpf_map__fd(skel_->maps.nm_backends);

  std::map<std::uint32_t, nm_service> byId;
  auto st = forEachKey<nm_service_key>(svcFd, "nm_services", [&](const nm_service_key& key) -> Status {
    InstalledService svc;
    if (bpf_map_lookup_elem(svcFd, &key, &svc.value) != 0) return {};  // deleted meanwhile
    for (std::uint32_t i = 0; i < svc.value.slot_count; ++i) {
      nm_slot_key sk{svc.value.id, i | (svc.value.generation ? NM_SLOT_GEN_BIT : 0u)};
      std::uint32_t backend = UINT32_MAX;  // a hole: the planner rewrites the table
      bpf_map_lookup_elem(slotFd, &sk, &backend);
      svc.slots.push_back(backend);
    }
    byId[svc.value.id] = svc.value;
    out.services.emplace(key, std::move(svc));
    return {};
  });
  if (!st) return st.error();

  st = forEachKey<nm_slot_key>(slotFd, "nm_slots", [&](const nm_slot_key& sk) -> Status {
    auto it = byId.find(sk.service_id);
    const bool gen = (sk.slot & NM_SLOT_GEN_BIT) != 0;
    const std::uint32_t index = sk.slot & ~NM_SLOT_GEN_BIT;
    if (it == byId.end() || gen != (it->second.generation != 0) || index >= it->second.slot_count)
      out.straySlots.push_back(sk);
    return {};
  });
  if (!st) return st.error();

  st = forEachKey<std::uint32_t>(beFd, "nm_backends", [&](const std::uint32_t& id) -> Status {
    nm_backend be{};
    if (bpf_map_lookup_elem(beFd, &id, &be) == 0) out.backends.emplace(id, be);
    return {};
  });
  if (!st) return st.error();
  return out;
}

Status SocketLb::apply(const SyncPlan& plan) {
  const int svcFd = bpf_map__fd(skel_->maps.nm_services);
  const int slotFd = bpf_map__fd(skel_->maps.nm_slots);
  const int beFd = bpf_map__fd(skel_->maps.nm_backends);
  const int statFd = bpf_map__fd(skel_->maps.nm_svc_stats);
  std::vector<nm_service_stats> zeros(numCpus_);

  for (const auto& op : plan.ops) {
    int rc = 0;
    const char* what = "";
    switch (op.kind) {
      case MapOp::Kind::kPutBackend:
        rc = bpf_map_update_elem(beFd, &op.id, &op.backend, BPF_ANY), what = "writing backend";
        break;
      case MapOp::Kind::kPutSlot:
        rc = bpf_map_update_elem(slotFd, &op.slot, &op.id, BPF_ANY), what = "writing backend slot";
        break;
      case MapOp::Kind::kResetStats:
        rc = bpf_map_update_elem(statFd, &op.id, zeros.data(), BPF_ANY), what = "resetting service counters";
        break;
      case MapOp::Kind::kPutService:
        rc = bpf_map_update_elem(svcFd, &op.serviceKey, &op.service, BPF_ANY), what = "writing service";
        break;
      case MapOp::Kind::kDeleteService:
        rc = bpf_map_delete_elem(svcFd, &op.serviceKey), what = "deleting service";
        break;
      case MapOp::Kind::kDeleteSlot:
        rc = bpf_map_delete_elem(slotFd, &op.slot), what = "deleting backend slot";
        break;
      case MapOp::Kind::kDeleteBackend:
        rc = bpf_map_delete_elem(beFd, &op.id), what = "deleting backend";
        break;
    }
    if (rc != 0 && errno != ENOENT) {
      int err = errno;
      std::string detail = what;
      if (op.kind == MapOp::Kind::kPutService || op.kind == MapOp::Kind::kDeleteService)
        detail += " " + toString(op.serviceKey);
      if (err == E2BIG || err == ENOMEM) detail += " (map full: reduce services/backends or raise the map sizes)";
      return Error::sys(detail, err);
    }
  }
  return {};
}

Result<std::map<nm_service_key, nm_service_stats, BytesLess<nm_service_key>>> SocketLb::readStats(
    const InstalledState& installed) const {
  std::map<nm_service_key, nm_service_stats, BytesLess<nm_service_key>> out;
  const int statFd = bpf_map__fd(skel_->maps.nm_svc_stats);
  std::vector<nm_service_stats> perCpu(numCpus_);
  for (const auto& [key, svc] : installed.services) {
    if (bpf_map_lookup_elem(statFd, &svc.value.id, perCpu.data()) != 0)
      return Error::sys("reading counters of " + toString(key));
    nm_service_stats sum{};
    for (const auto& c : perCpu) {
      sum.connections += c.connections;
      sum.datagrams += c.datagrams;
      sum.no_backend += c.no_backend;
      sum.captured += c.captured;
    }
    out.emplace(key, sum);
  }
  return out;
}

std::vector<MapFill> SocketLb::mapFill() const {
  std::vector<MapFill> out;
  auto count = [](bpf_map* map) -> std::optional<std::uint32_t> {
    std::vector<char> key(bpf_map__key_size(map)), next(bpf_map__key_size(map));
    std::uint32_t n = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(bpf_map__fd(map), prev, next.data()) == 0) {
      ++n;
      key.swap(next);
      prev = key.data();
    }
    if (errno != ENOENT) return std::nullopt;
    return n;
  };
  for (bpf_map* map : {skel_->maps.nm_services, skel_->maps.nm_slots, skel_->maps.nm_backends,
                       skel_->maps.nm_udp_revnat, skel_->maps.nm_workloads, skel_->maps.nm_capture,
                       skel_->maps.nm_node_addrs}) {
    out.push_back({bpf_map__name(map), count(map), bpf_map__max_entries(map)});
  }
  auto services = count(skel_->maps.nm_services);
  out.push_back({bpf_map__name(skel_->maps.nm_svc_stats), services, bpf_map__max_entries(skel_->maps.nm_svc_stats)});
  out.push_back({bpf_map__name(skel_->maps.nm_sock_orig), std::nullopt, 0});
  return out;
}

Result<InstalledMesh> SocketLb::readInstalledMesh() const {
  InstalledMesh out;
  const int cfgFd = bpf_map__fd(skel_->maps.nm_mesh_config);
  const int wlFd = bpf_map__fd(skel_->maps.nm_workloads);
  const int statFd = bpf_map__fd(skel_->maps.nm_workload_stats);
  const int addrFd = bpf_map__fd(skel_->maps.nm_node_addrs);
  const std::uint32_t zero = 0;
  if (bpf_map_lookup_elem(cfgFd, &zero, &out.config) != 0) return Error::sys("reading nm_mesh_config");
  auto st = forEachKey<std::uint64_t>(wlFd, "nm_workloads", [&](const std::uint64_t& id) -> Status {
    nm_workload w{};
    if (bpf_map_lookup_elem(wlFd, &id, &w) == 0) out.workloads.emplace(id, w);
    return {};
  });
  if (!st) return st.error();
  st = forEachKey<std::uint64_t>(statFd, "nm_workload_stats", [&](const std::uint64_t& id) -> Status {
    out.statsEntries.insert(id);
    return {};
  });
  if (!st) return st.error();
  st = forEachKey<nm_node_addr_key>(addrFd, "nm_node_addrs", [&](const nm_node_addr_key& k) -> Status {
    out.nodeAddrs.insert(k);
    return {};
  });
  if (!st) return st.error();
  return out;
}

Status SocketLb::applyMesh(const MeshPlan& plan) {
  const int cfgFd = bpf_map__fd(skel_->maps.nm_mesh_config);
  const int wlFd = bpf_map__fd(skel_->maps.nm_workloads);
  const int statFd = bpf_map__fd(skel_->maps.nm_workload_stats);
  const int addrFd = bpf_map__fd(skel_->maps.nm_node_addrs);
  std::vector<nm_workload_stats> zeros(numCpus_);
  const std::uint32_t zero = 0;
  const std::uint32_t one = 1;
  using K = MeshOp::Kind;
  for (const auto& op : plan.ops) {
    int rc = 0;
    const char* what = "";
    switch (op.kind) {
      case K::kPutNodeAddr:
        rc = bpf_map_update_elem(addrFd, &op.nodeAddr, &one, BPF_ANY), what = "writing a trusted node address";
        break;
      case K::kPutWorkloadStats:
        rc = bpf_map_update_elem(statFd, &op.cgroupId, zeros.data(), BPF_ANY), what = "creating workload counters";
        break;
      case K::kPutConfig:
        rc = bpf_map_update_elem(cfgFd, &zero, &op.config, BPF_ANY), what = "writing the mesh config";
        break;
      case K::kPutWorkload:
        rc = bpf_map_update_elem(wlFd, &op.cgroupId, &op.workload, BPF_ANY), what = "writing workload";
        break;
      case K::kDeleteWorkload:
        rc = bpf_map_delete_elem(wlFd, &op.cgroupId), what = "deleting workload";
        break;
      case K::kDeleteWorkloadStats:
        rc = bpf_map_delete_elem(statFd, &op.cgroupId), what = "deleting workload counters";
        break;
      case K::kDeleteNodeAddr:
        rc = bpf_map_delete_elem(addrFd, &op.nodeAddr), what = "deleting a trusted node address";
        break;
    }
    if (rc != 0 && errno != ENOENT) {
      int err = errno;
      std::string detail = what;
      if (op.cgroupId) detail += " (cgroup id " + std::to_string(op.cgroupId) + ")";
      if (err == E2BIG || err == ENOMEM || err == ENOSPC)
        detail += " (map full: at most " + std::to_string(NM_MAX_WORKLOADS) + " meshed workloads)";
      return Error::sys(detail, err);
    }
  }
  return {};
}

Result<MeshPlan> SocketLb::syncMesh(const state::Snapshot& snapshot, const std::string& cgroupMount) {
  auto desired = desiredMeshFromSnapshot(snapshot, hostNetnsCookie_, [&](const std::string& rel) {
    return cgroupIdOf(cgroupMount, rel);
  });
  if (desired.workloads.size() > NM_MAX_WORKLOADS)
    return Error{std::to_string(desired.workloads.size()) + " meshed workloads exceed the datapath's capacity of " +
                 std::to_string(NM_MAX_WORKLOADS)};
  auto installed = readInstalledMesh();
  if (!installed) return installed.error();
  MeshPlan plan = planMeshSync(*installed, desired);
  if (auto st = applyMesh(plan); !st) return st.error().wrap("applying the mesh maps");
  std::lock_guard lock(pathsMu_);
  workloadPaths_.clear();
  for (const auto& [id, w] : desired.workloads) workloadPaths_.emplace(id, w.cgroup);
  return plan;
}

Result<std::vector<WorkloadCounters>> SocketLb::readWorkloadStats() const {
  std::vector<WorkloadCounters> out;
  const int wlFd = bpf_map__fd(skel_->maps.nm_workloads);
  const int statFd = bpf_map__fd(skel_->maps.nm_workload_stats);
  std::vector<nm_workload_stats> perCpu(numCpus_);
  std::lock_guard lock(pathsMu_);
  auto st = forEachKey<std::uint64_t>(wlFd, "nm_workloads", [&](const std::uint64_t& id) -> Status {
    nm_workload w{};
    if (bpf_map_lookup_elem(wlFd, &id, &w) != 0) return {};
    WorkloadCounters c;
    c.cgroupId = id;
    c.meshed = (w.flags & NM_WL_F_MESHED) != 0;
    c.strict = (w.flags & NM_WL_F_STRICT) != 0;
    if (auto it = workloadPaths_.find(id); it != workloadPaths_.end()) c.cgroup = it->second;
    if (bpf_map_lookup_elem(statFd, &id, perCpu.data()) == 0) {
      for (const auto& p : perCpu) {
        c.captured += p.captured;
        c.strictDrops += p.strict_drops;
      }
    }
    out.push_back(std::move(c));
    return {};
  });
  if (!st) return st.error();
  return out;
}

Status SocketLb::removePins(const std::string& pinRoot) {
  PinPaths pins(pinRoot);
  std::error_code ec;
  // Links first. Dropping a link's last reference detaches its program only
  // once the kernel's deferred release runs, so detach each one explicitly
  // (synchronous): when --cleanup returns, nothing is attached any more.
  for (const auto& dir : {pins.links(), pins.maps()}) {
    if (!std::filesystem::exists(dir, ec)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (dir == pins.links()) {
        UniqueFd link(::bpf_obj_get(entry.path().c_str()));
        if (link && ::bpf_link_detach(link.get()) != 0 && errno != EINVAL)
          return Error::sys("detaching link " + entry.path().string());
      }
      if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
        return Error::sys("removing pin " + entry.path().string());
    }
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return Error::sys("removing " + dir);
  }
  if (::rmdir(pinRoot.c_str()) != 0 && errno != ENOENT) return Error::sys("removing " + pinRoot);
  return {};
}

}  // namespace nodemesh::datapath
