#include "daemon/kernel_features.h"

#include <bpf/libbpf.h>
#include <liburing.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/system_paths.h"

namespace nodemesh::daemon {
namespace {

KernelFeature progType(const char* name, bpf_prog_type type, const char* why) {
  const int rc = libbpf_probe_bpf_prog_type(type, nullptr);
  return {name, rc == 1, rc == 1 ? why : "not supported by this kernel"};
}

KernelFeature helper(const char* name, bpf_prog_type type, bpf_func_id id, const char* why) {
  const int rc = libbpf_probe_bpf_helper(type, id, nullptr);
  return {name, rc == 1, rc == 1 ? why : "missing: connect() to a service without backends fails with EPERM"};
}

KernelFeature ioUring() {
  io_uring_probe* probe = io_uring_get_probe();
  if (!probe) return {"io_uring", false, "io_uring_setup failed (disabled by sysctl or seccomp?)"};
  const bool recvMultishot = io_uring_opcode_supported(probe, IORING_OP_RECV);
  io_uring_free_probe(probe);
  return {"io_uring", true, recvMultishot ? "available for the node proxy" : "available (no IORING_OP_RECV)"};
}

KernelFeature ktls() {
  auto ulps = readFile("/proc/sys/net/ipv4/tcp_available_ulp");
  const bool tls = ulps && ulps->find("tls") != std::string::npos;
  return {"ktls", tls, tls ? "kernel TLS offload available" : "CONFIG_TLS off: TLS stays in user space"};
}

}  // namespace

KernelInfo probeKernel() {
  KernelInfo info;
  utsname u{};
  if (::uname(&u) == 0) info.release = u.release;
  const bool btf = ::access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  info.features.push_back({"btf", btf, btf ? "/sys/kernel/btf/vmlinux" : "no kernel BTF: CO-RE programs cannot load"});
  info.features.push_back(progType("cgroup_sock_addr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "connect/sendmsg/recvmsg/getpeername hooks"));
  info.features.push_back(helper("bpf_set_retval", BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval,
                                 "no-backend connects fail with ECONNREFUSED"));
  const int sk = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr);
  info.features.push_back({"sk_storage", sk == 1, sk == 1 ? "per-socket original destination" : "not supported"});
  info.features.push_back(progType("sock_ops", BPF_PROG_TYPE_SOCK_OPS, "same-node socket redirection (node proxy)"));
  info.features.push_back(progType("sk_msg", BPF_PROG_TYPE_SK_MSG, "same-node socket redirection (node proxy)"));
  info.features.push_back(ioUring());
  info.features.push_back(ktls());
  return info;
}

}  // namespace nodemesh::daemon
