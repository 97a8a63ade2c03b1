#include "proxy/hbone/hbone_server.h"

#include <nghttp2/nghttp2.h>

namespace nodemesh::proxy::hbone {

Result<std::unique_ptr<HboneServer>> HboneServer::create(std::optional<identity::SpiffeId> peer, Authorizer authorize,
                                                         H2Limits limits, HboneCounters* counters) {
  if (!authorize) return Error{"HboneServer needs an authorization callback"};
  std::unique_ptr<HboneServer> s(new HboneServer(std::move(peer), std::move(authorize), limits, counters));
  if (auto st = s->init(); !st) return st.error().wrap("HBONE server");
  return s;
}

void HboneServer::refuse(Stream& s, int status, StreamReject why) {
  counters().of(why)++;
  if (submitResponse(s, status) != 0) {
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
  }
}

void HboneServer::onHeadersComplete(Stream& s, const nghttp2_frame& frame) {
  if (frame.headers.cat != NGHTTP2_HCAT_REQUEST || s.announced) return;  // trailers: ignored
  // nghttp2's HTTP messaging checks ran already (pseudo-header set, CONNECT
  // without :path/:scheme, ...); these are the HBONE rules on top.
  if (s.method != "CONNECT") return refuse(s, 405, StreamReject::kMethodNotAllowed);
  if (!s.path.empty() || !s.scheme.empty() || !s.protocol.empty()) {
    return refuse(s, 400, StreamReject::kBadRequest);
  }
  auto dst = parseTunnelAuthority(s.authority);
  if (!dst) return refuse(s, 400, StreamReject::kBadAuthority);
  if (!authorize_(peer_, *dst)) return refuse(s, 403, StreamReject::kDenied);
  if (submitResponse(s, 200) != 0) {
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  s.opened = true;
  s.announced = true;
  counters().streamsOpened++;
  StreamEvent e{StreamEvent::Kind::kOpened, s.id};
  e.status = 200;
  e.destination = *dst;
  emit(e);
  // Request header strings are no longer needed.
  s.method.clear(), s.method.shrink_to_fit();
  s.authority.clear(), s.authority.shrink_to_fit();
}

}  // namespace nodemesh::proxy::hbone
