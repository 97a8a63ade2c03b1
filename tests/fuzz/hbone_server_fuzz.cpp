// libFuzzer target: arbitrary bytes into an HboneServer (plaintext HTTP/2,
// no TLS) after a valid client preface + SETTINGS, exercising the nghttp2
// glue: header validation, authorization, flow control, stream bookkeeping.
// The input is split into chunks at 0xff 0x00 boundaries so that server
// output and the owner's reads/writes interleave with the peer's bytes.
// The first byte picks the answer mode: immediate 200, or deferred (the
// owner accepts or declines each authorized CONNECT later, as the mesh
// proxy does once it knows whether the backend answered).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/hbone/hbone_server.h"

using namespace nodemesh::proxy::hbone;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const AnswerMode mode = (data[0] & 1) ? AnswerMode::kDeferred : AnswerMode::kImmediate;
  const bool declineSome = (data[0] & 2) != 0;
  ++data;
  --size;
  HboneCounters counters;
  H2Limits limits;
  limits.streamWindow = 65535;
  limits.streamSendBuffer = 4096;
  auto server = HboneServer::create(
      std::nullopt,
      [](const std::optional<nodemesh::identity::SpiffeId>&, const TunnelAddress& d) { return d.port != 22; }, limits,
      &counters, mode);
  if (!server) return 0;
  auto& s = **server;
  std::string out;
  // A well-formed start: the preface and an empty SETTINGS frame.
  std::string start = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  start.append("\0\0\0\x04\0\0\0\0\0", 9);
  if (!s.receive(start)) return 0;
  s.output(out);

  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    auto cut = in.find(std::string_view("\xff\x00", 2));
    auto chunk = in.substr(0, cut);
    in = cut == std::string_view::npos ? std::string_view() : in.substr(cut + 2);
    if (!s.receive(chunk)) break;
    // Play the owner: echo what arrives on each stream, half-close on peer end.
    for (const auto& ev : s.takeEvents()) {
      std::string buf;
      switch (ev.kind) {
        case StreamEvent::Kind::kReadable:
        case StreamEvent::Kind::kPeerEnd:
          s.read(ev.stream, buf, 8192);
          s.write(ev.stream, buf);
          if (ev.kind == StreamEvent::Kind::kPeerEnd) s.closeWrite(ev.stream);
          break;
        case StreamEvent::Kind::kOpened:
          s.write(ev.stream, "hello");
          break;
        case StreamEvent::Kind::kRequested:
          // Deferred: decline every other stream (a backend that is down), accept the rest.
          if (declineSome && (ev.stream % 4) == 3) s.decline(ev.stream);
          else s.accept(ev.stream);
          break;
        default:
          break;
      }
    }
    out.clear();
    s.output(out, 65536);
  }
  out.clear();
  s.output(out);
  return 0;
}
