#include "proxy/hbone/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace nodemesh::proxy::hbone {

namespace {

constexpr std::size_t kEagerFramingCap = 4096;

H2Session* self(void* ud) {
  return static_cast<H2Session*>(ud);
}

CloseReason fromH2Error(std::uint32_t code) {
  switch (code) {
    case NGHTTP2_FRAME_SIZE_ERROR:
      return CloseReason::kFrameSize;
    case NGHTTP2_COMPRESSION_ERROR:
      return CloseReason::kCompression;
    case NGHTTP2_FLOW_CONTROL_ERROR:
      return CloseReason::kFlowControl;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return CloseReason::kFlood;
    case NGHTTP2_INTERNAL_ERROR:
      return CloseReason::kInternal;
    default:
      return CloseReason::kProtocol;
  }
}

CloseReason fromLibError(long rv) {
  switch (rv) {
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
      return CloseReason::kBadPreface;
    case NGHTTP2_ERR_FLOODED:
      return CloseReason::kFlood;
    case NGHTTP2_ERR_FRAME_SIZE_ERROR:
      return CloseReason::kFrameSize;
    case NGHTTP2_ERR_HEADER_COMP:
      return CloseReason::kCompression;
    case NGHTTP2_ERR_FLOW_CONTROL:
      return CloseReason::kFlowControl;
    case NGHTTP2_ERR_NOMEM:
    case NGHTTP2_ERR_CALLBACK_FAILURE:
      return CloseReason::kInternal;
    default:
      return CloseReason::kProtocol;
  }
}

}  // namespace

// The nghttp2 callbacks, as friends of H2Session. They never throw and never
// trust the peer: unknown stream ids are consumed and ignored.
struct H2Callbacks {
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    H2Session* s = self(ud);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST && s->server_) {
      s->create(frame->hd.stream_id);
    } else if (auto* st = s->find(frame->hd.stream_id)) {
      st->headerBytes = 0;  // each header block is limited on its own
    }
    return 0;
  }

  static int onHeader(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* ud) {
    H2Session* s = self(ud);
    H2Session::Stream* st = s->find(frame->hd.stream_id);
    if (st == nullptr) return 0;
    st->headerBytes += namelen + valuelen + 32;  // RFC 9113 6.5.2 accounting
    if (st->headerBytes > s->limits_.maxHeaderListSize) {
      s->connectionError(CloseReason::kHeaderListTooLarge);
      nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      if (!st->request) st->request = std::make_unique<H2Session::Stream::RequestHead>();
      H2Session::Stream::RequestHead& h = *st->request;
      if (n == ":method")
        h.method = std::move(v);
      else if (n == ":authority")
        h.authority = std::move(v);
      else if (n == ":path")
        h.path = std::move(v);
      else if (n == ":scheme")
        h.scheme = std::move(v);
      else if (n == ":protocol")
        h.protocol = std::move(v);
    } else if (n == ":status") {
      int code = 0;
      for (char c : v) {
        if (c < '0' || c > '9' || code > 999) {
          st->badHeader = true;
          break;
        }
        code = code * 10 + (c - '0');
      }
      st->status = code;
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    H2Session* s = self(ud);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        H2Session::Stream* st = s->find(frame->hd.stream_id);
        if (st == nullptr) return 0;
        s->onHeadersComplete(*st, *frame);
        break;
      }
      case NGHTTP2_DATA:
        break;
      case NGHTTP2_GOAWAY:
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) s->connectionError(CloseReason::kPeerGoaway);
        return 0;
      default:
        return 0;
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      if (H2Session::Stream* st = s->find(frame->hd.stream_id); st != nullptr && !st->peerEnd) {
        st->peerEnd = true;
        if (st->announced) s->emit({StreamEvent::Kind::kPeerEnd, st->id});
      }
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                         std::size_t len, void* ud) {
    H2Session* s = self(ud);
    H2Session::Stream* st = s->find(id);
    if (st == nullptr || !st->announced || st->closed) {
      nghttp2_session_consume(session, id, len);  // nobody will read it: give the window back now
      return 0;
    }
    bool wasEmpty = st->in.empty();
    st->in.append(reinterpret_cast<const char*>(data), len);
    s->counters_->bytesIn += len;
    if (wasEmpty && len > 0) s->emit({StreamEvent::Kind::kReadable, id});
    return 0;
  }

  static int onStreamClose(nghttp2_session*, std::int32_t id, std::uint32_t code, void* ud) {
    H2Session* s = self(ud);
    H2Session::Stream* st = s->find(id);
    if (st == nullptr) return 0;
    if (code != NGHTTP2_NO_ERROR) s->counters_->streamsReset++;
    st->closed = true;
    if (st->announced) {
      StreamEvent e{StreamEvent::Kind::kClosed, id};
      e.errorCode = code;
      s->emit(e);
    }
    s->dropIfDone(id);
    return 0;
  }

  static int onFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    H2Session* s = self(ud);
    if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      if (H2Session::Stream* st = s->find(frame->hd.stream_id); st != nullptr && st->rejectAfterResponse) {
        st->rejectAfterResponse = false;
        // The refusal is out; stop the client's half too (it must not keep a stream slot).
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
      }
    } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      s->connectionError(fromH2Error(frame->goaway.error_code));
    }
    return 0;
  }

  static int onInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int libError, void* ud) {
    H2Session* s = self(ud);
    // Stream-level HTTP messaging faults (bad pseudo-headers, CONNECT with
    // :path, uppercase names, ...): nghttp2 resets the stream itself.
    if (s->server_ && frame->hd.type == NGHTTP2_HEADERS &&
        (libError == NGHTTP2_ERR_HTTP_HEADER || libError == NGHTTP2_ERR_HTTP_MESSAGING)) {
      s->counters_->of(StreamReject::kMalformed)++;
    }
    return 0;
  }

  static ssize_t readData(nghttp2_session*, std::int32_t id, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source*, void* ud) {
    H2Session* s = self(ud);
    H2Session::Stream* st = s->find(id);
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::size_t n = std::min(length, st->out.size());
    if (n > 0) {
      std::memcpy(buf, st->out.data(), n);
      st->out.erase(0, n);
      s->counters_->bytesOut += n;
      if (st->blockedWrite) {
        st->blockedWrite = false;
        s->emit({StreamEvent::Kind::kWritable, id});
      }
    }
    if (st->out.empty()) {
      if (st->outEnd) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }
};

H2Session::H2Session(bool server, H2Limits limits, HboneCounters* counters)
    : server_(server), limits_(limits), counters_(counters != nullptr ? counters : &ownCounters_) {}

H2Session::~H2Session() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

Status H2Session::init() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return Error{"nghttp2_session_callbacks_new: out of memory"};
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Callbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Callbacks::onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &H2Callbacks::onFrameSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &H2Callbacks::onInvalidFrame);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return Error{"nghttp2_option_new: out of memory"};
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);  // windows open only as the owner reads
  int rv = server_ ? nghttp2_session_server_new2(&session_, cbs, this, opt)
                   : nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return Error{std::string("nghttp2 session: ") + nghttp2_strerror(rv)};

  nghttp2_settings_entry iv[5];
  std::size_t n = 0;
  iv[n++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.maxConcurrentStreams};
  iv[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.streamWindow};
  iv[n++] = {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, limits_.maxFrameSize};
  iv[n++] = {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.maxHeaderListSize};
  if (!server_) iv[n++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  if ((rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, n)) != 0) {
    return Error{std::string("nghttp2 SETTINGS: ") + nghttp2_strerror(rv)};
  }
  if ((rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                                  static_cast<std::int32_t>(limits_.connectionWindow))) != 0) {
    return Error{std::string("nghttp2 connection window: ") + nghttp2_strerror(rv)};
  }
  return {};
}

H2Session::Stream* H2Session::find(std::int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

H2Session::Stream& H2Session::create(std::int32_t id) {
  auto& p = streams_[id];
  if (!p) {
    p = std::make_unique<Stream>();
    p->id = id;
  }
  return *p;
}

void H2Session::connectionError(CloseReason r) {
  if (reason_ != CloseReason::kNone) return;  // the first reason is the one counted
  reason_ = r;
  counters_->of(r)++;
}

void H2Session::dropIfDone(std::int32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& st = *it->second;
  if (!st.closed) return;
  if (st.announced && !st.in.empty()) return;  // the owner still reads it
  if (!st.in.empty() && session_ != nullptr) nghttp2_session_consume(session_, id, st.in.size());
  streams_.erase(it);
}

namespace {
nghttp2_nv nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}
}  // namespace

std::int32_t H2Session::submitConnect(const std::string& authority) {
  nghttp2_nv hdrs[] = {nv(":method", "CONNECT"), nv(":authority", authority)};
  nghttp2_data_provider dp{};
  dp.read_callback = &H2Callbacks::readData;
  std::int32_t id = nghttp2_submit_request(session_, nullptr, hdrs, 2, &dp, nullptr);
  if (id > 0) {
    Stream& st = create(id);
    st.dataAttached = true;
    st.announced = true;
  }
  return id;
}

int H2Session::submitResponse(Stream& s, int status) {
  std::string code = std::to_string(status);
  nghttp2_nv hdrs[] = {nv(":status", code)};
  if (status == 200) {
    nghttp2_data_provider dp{};
    dp.read_callback = &H2Callbacks::readData;
    int rv = nghttp2_submit_response(session_, s.id, hdrs, 1, &dp);
    if (rv == 0) s.dataAttached = true;
    return rv;
  }
  s.rejectAfterResponse = true;
  return nghttp2_submit_response(session_, s.id, hdrs, 1, nullptr);
}

Status H2Session::receive(std::span<const std::uint8_t> bytes) {
  if (dead_) return Error{std::string("HTTP/2 connection closed (") + toString(reason_) + ")"};
  ssize_t rv = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (rv < 0) {
    dead_ = true;
    connectionError(fromLibError(rv));
    return Error{std::string("HTTP/2 connection error (") + toString(reason_) +
                 "): " + nghttp2_strerror(static_cast<int>(rv))};
  }
  if (reason_ != CloseReason::kNone && reason_ != CloseReason::kPeerGoaway) {
    return Error{std::string("HTTP/2 connection error (") + toString(reason_) + ")"};
  }
  if (reason_ == CloseReason::kNone && nghttp2_session_want_write(session_) != 0) {
    // nghttp2 may have queued a GOAWAY (e.g. a frame over SETTINGS_MAX_FRAME_SIZE
    // is answered with terminate_session, no callback): frame the queued
    // control frames now so the error code - the reason - is known and
    // counted at once. Control frames come before any DATA, so a small cap
    // keeps this from framing stream data early.
    output(pendingOut_, kEagerFramingCap);
    if (reason_ != CloseReason::kNone && reason_ != CloseReason::kPeerGoaway) {
      return Error{std::string("HTTP/2 connection error (") + toString(reason_) + ")"};
    }
  }
  return {};
}

std::size_t H2Session::output(std::string& out, std::size_t limit) {
  std::size_t added = 0;
  if (&out != &pendingOut_ && !pendingOut_.empty()) {
    out += pendingOut_;
    added += pendingOut_.size();
    pendingOut_.clear();
  }
  if (dead_) return added;
  while (added < limit) {
    const std::uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      dead_ = true;
      connectionError(CloseReason::kInternal);
      break;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    added += static_cast<std::size_t>(n);
  }
  return added;
}

bool H2Session::finished() const {
  if (!pendingOut_.empty()) return false;
  if (dead_) return true;
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

void H2Session::shutdown() {
  if (!dead_) nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
}

std::vector<StreamEvent> H2Session::takeEvents() {
  std::vector<StreamEvent> e;
  e.swap(events_);
  return e;
}

std::size_t H2Session::writable(std::int32_t id) const {
  const Stream* st = find(id);
  if (st == nullptr || !st->dataAttached || !st->opened || st->outEnd || st->closed || dead_) return 0;
  return limits_.streamSendBuffer > st->out.size() ? limits_.streamSendBuffer - st->out.size() : 0;
}

std::size_t H2Session::write(std::int32_t id, std::span<const std::uint8_t> bytes) {
  std::size_t room = writable(id);
  Stream* st = find(id);
  std::size_t n = std::min(room, bytes.size());
  if (st == nullptr) return 0;
  if (n < bytes.size()) st->blockedWrite = true;
  if (n == 0) return 0;
  st->out.append(reinterpret_cast<const char*>(bytes.data()), n);
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return n;
}

void H2Session::closeWrite(std::int32_t id) {
  Stream* st = find(id);
  if (st == nullptr || st->outEnd || st->closed || !st->dataAttached) return;
  st->outEnd = true;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
}

std::size_t H2Session::readable(std::int32_t id) const {
  const Stream* st = find(id);
  return st == nullptr ? 0 : st->in.size();
}

std::size_t H2Session::read(std::int32_t id, std::string& out, std::size_t max) {
  Stream* st = find(id);
  if (st == nullptr) return 0;
  std::size_t n = std::min(max, st->in.size());
  if (n == 0) return 0;
  out.append(st->in, 0, n);
  st->in.erase(0, n);
  nghttp2_session_consume(session_, id, n);  // reopens stream + connection windows
  dropIfDone(id);
  return n;
}

void H2Session::reset(std::int32_t id, std::uint32_t errorCode) {
  Stream* st = find(id);
  if (st == nullptr) return;
  if (!st->in.empty()) {
    nghttp2_session_consume(session_, id, st->in.size());
    st->in.clear();
  }
  st->out.clear();
  st->outEnd = true;
  if (!st->closed) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, errorCode);
  dropIfDone(id);
}

bool H2Session::peerEnded(std::int32_t id) const {
  const Stream* st = find(id);
  return st == nullptr || st->peerEnd;
}

}  // namespace nodemesh::proxy::hbone
