#include "proxy/hbone/hbone_server.h"

#include <nghttp2/nghttp2.h>

namespace nodemesh::proxy::hbone {

Result<std::unique_ptr<HboneServer>> HboneServer::create(std::optional<identity::SpiffeId> peer, Authorizer authorize,
                                                         H2Limits limits, HboneCounters* counters, AnswerMode mode) {
  if (!authorize) return Error{"HboneServer needs an authorization callback"};
  std::unique_ptr<HboneServer> s(new HboneServer(std::move(peer), std::move(authorize), limits, counters, mode));
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
  static const Stream::RequestHead kNoRequestHead;  // HEADERS without any request pseudo-header
  const Stream::RequestHead& head = s.request ? *s.request : kNoRequestHead;
  if (head.method != "CONNECT") return refuse(s, 405, StreamReject::kMethodNotAllowed);
  if (!head.path.empty() || !head.scheme.empty() || !head.protocol.empty()) {
    return refuse(s, 400, StreamReject::kBadRequest);
  }
  auto dst = parseTunnelAuthority(head.authority);
  if (!dst) return refuse(s, 400, StreamReject::kBadAuthority);
  if (!authorize_(peer_, *dst)) return refuse(s, 403, StreamReject::kDenied);
  if (mode_ == AnswerMode::kDeferred) {
    // Announced (the owner hears kReadable / kClosed) but not opened: nothing
    // is written to it, and what the peer sends waits within its window.
    s.announced = true;
    s.awaitingAnswer = true;
    StreamEvent e{StreamEvent::Kind::kRequested, s.id};
    e.destination = *dst;
    emit(e);
    s.request.reset();  // the request head is no longer needed
    return;
  }
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
  s.request.reset();  // the request head is no longer needed
}

HboneServer::Stream* HboneServer::awaiting(std::int32_t stream) {
  Stream* s = find(stream);
  if (s == nullptr || !s->awaitingAnswer || s->closed || finished()) return nullptr;
  return s;
}

bool HboneServer::accept(std::int32_t stream) {
  Stream* s = awaiting(stream);
  if (s == nullptr) return false;
  s->awaitingAnswer = false;
  if (submitResponse(*s, 200) != 0) {
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    return false;
  }
  s->opened = true;
  counters().streamsOpened++;
  return true;
}

bool HboneServer::decline(std::int32_t stream, int status, StreamReject why) {
  Stream* s = awaiting(stream);
  if (s == nullptr) return false;
  s->awaitingAnswer = false;
  // The owner is done with it: no more events, and whatever the peer sent
  // meanwhile goes back to the windows so the stream can be dropped.
  s->announced = false;
  if (!s->in.empty()) {
    nghttp2_session_consume(session(), s->id, s->in.size());
    s->in.clear();
  }
  refuse(*s, status, why);
  return true;
}

}  // namespace nodemesh::proxy::hbone
