#include "proxy/hbone/hbone_client.h"

#include <nghttp2/nghttp2.h>

namespace nodemesh::proxy::hbone {

Result<std::unique_ptr<HboneClient>> HboneClient::create(H2Limits limits, HboneCounters* counters) {
  std::unique_ptr<HboneClient> c(new HboneClient(limits, counters));
  if (auto st = c->init(); !st) return st.error().wrap("HBONE client");
  return c;
}

Result<std::int32_t> HboneClient::connect(const TunnelAddress& dst) {
  if (finished()) return Error{"HBONE connection is closed"};
  std::int32_t id = submitConnect(dst.toString());
  if (id < 0) return Error{std::string("HBONE CONNECT to ") + dst.toString() + ": " + nghttp2_strerror(id)};
  return id;
}

bool HboneClient::isOpen(std::int32_t stream) const {
  const Stream* s = find(stream);
  return s != nullptr && s->opened && !s->closed;
}

void HboneClient::onHeadersComplete(Stream& s, const nghttp2_frame& frame) {
  if (frame.headers.cat != NGHTTP2_HCAT_RESPONSE && frame.headers.cat != NGHTTP2_HCAT_HEADERS) return;
  if (s.opened || s.status == 0) return;    // trailers
  if (s.status >= 100 && s.status < 200) {  // interim response: wait for the final one
    s.status = 0;
    return;
  }
  if (s.status == 200 && !s.badHeader) {
    s.opened = true;
    counters().streamsOpened++;
    StreamEvent e{StreamEvent::Kind::kOpened, s.id};
    e.status = 200;
    emit(e);
    return;
  }
  StreamEvent e{StreamEvent::Kind::kRejected, s.id};
  e.status = s.status;
  emit(e);
  s.outEnd = true;
  s.out.clear();
  if ((frame.hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    nghttp2_submit_rst_stream(session(), NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
  }
}

}  // namespace nodemesh::proxy::hbone
