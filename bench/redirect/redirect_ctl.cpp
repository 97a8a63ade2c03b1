// Switches the same-node redirect for the benchmark through the agent's own
// code (datapath::SockRedirect), so the measured path is the shipped one.
//
//   redirect_ctl PIN_ROOT on CGROUP   load + enable (adopts earlier pins)
//   redirect_ctl PIN_ROOT off         disable (pins go once no socket remains)
//   redirect_ctl PIN_ROOT stats       one line of counters
//   redirect_ctl PIN_ROOT cleanup     remove every pin it made
// run.sh links it against the build's static libraries.
#include <cstdio>
#include <string>

#include "datapath/sock_redirect.h"

using nodemesh::datapath::SockRedirect;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: redirect_ctl PIN_ROOT on CGROUP|off|stats|cleanup\n");
    return 2;
  }
  const std::string root = argv[1], cmd = argv[2];
  if (cmd == "cleanup") {
    auto st = SockRedirect::removePins(root);
    if (!st) std::fprintf(stderr, "redirect_ctl: %s\n", st.error().message.c_str());
    return st ? 0 : 1;
  }
  auto r = SockRedirect::load(root);
  if (!r) {
    std::fprintf(stderr, "redirect_ctl: %s\n", r.error().message.c_str());
    return 1;
  }
  nodemesh::Status st;
  if (cmd == "on" && argc == 4) {
    st = (*r)->enable(argv[3]);
  } else if (cmd == "off") {
    st = (*r)->disable();
  } else if (cmd == "stats") {
    auto s = (*r)->stats();
    if (!s) st = s.error();
    else
      std::printf("sockets_added=%llu msgs_redirected=%llu bytes_redirected=%llu msgs_passed=%llu msgs_tcp=%llu\n",
                  (unsigned long long)s->socketsAdded, (unsigned long long)s->msgsRedirected,
                  (unsigned long long)s->bytesRedirected, (unsigned long long)s->msgsPassed,
                  (unsigned long long)s->msgsPinnedTcp);
  } else {
    std::fprintf(stderr, "redirect_ctl: unknown command %s\n", cmd.c_str());
    return 2;
  }
  if (!st) std::fprintf(stderr, "redirect_ctl: %s\n", st.error().message.c_str());
  return st ? 0 : 1;
}
