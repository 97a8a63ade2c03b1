// The nghttp2 glue shared by HboneClient and HboneServer: a sans-IO HTTP/2
// session over plaintext bytes (what TlsSession decrypts, or a plain socket
// for same-node/fuzzing), with per-stream byte pipes and flow control.
//
// Flow control: automatic WINDOW_UPDATEs are off. Received DATA sits in the
// stream's receive buffer until the owner read()s it; only then is it
// "consumed" and the window reopened, so a slow reader bounds what the peer
// may send to the stream window (and the connection window). Writes go into
// a per-stream send buffer of at most H2Limits::streamSendBuffer bytes;
// write() takes only what fits (writable() says how much), and nghttp2 drains
// it as the peer's windows allow. Nothing grows without bound.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "proxy/hbone/counters.h"
#include "proxy/hbone/tunnel_authority.h"

namespace nodemesh::proxy::hbone {

struct H2Limits {
  std::uint32_t maxConcurrentStreams = 100;          // SETTINGS_MAX_CONCURRENT_STREAMS we advertise
  std::uint32_t streamWindow = 256 * 1024;           // SETTINGS_INITIAL_WINDOW_SIZE we advertise
  std::uint32_t connectionWindow = 4 * 1024 * 1024;  // our connection-level receive window
  std::uint32_t maxFrameSize = 16384;                // SETTINGS_MAX_FRAME_SIZE (the HTTP/2 minimum)
  std::uint32_t maxHeaderListSize = 8192;            // SETTINGS_MAX_HEADER_LIST_SIZE, enforced
  std::size_t streamSendBuffer = 64 * 1024;          // per-stream bytes accepted by write() before it says "full"
};

struct StreamEvent {
  enum class Kind : std::uint8_t {
    kOpened,    // server: an authorized tunnel to `destination` (200 sent); client: 200 received
    kRequested, // server in deferred mode: an authorized tunnel request to `destination`, not answered yet:
                // HboneServer::accept() (200) or decline() (5xx). Until then nothing can be written to it.
    kRejected,  // client: the server answered `status` (not 200); the stream is reset
    kReadable,  // data arrived (edge: the receive buffer was empty before)
    kWritable,  // the send buffer has room again after a short write()
    kPeerEnd,   // the peer half-closed (END_STREAM); read() what is left
    kClosed,    // the stream is gone; `errorCode` is the HTTP/2 code (0: clean). Unread data stays readable.
  };
  Kind kind;
  std::int32_t stream = 0;
  int status = 0;
  std::uint32_t errorCode = 0;
  TunnelAddress destination{};  // kOpened on the server
};

class H2Session {
 public:
  virtual ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Plaintext HTTP/2 bytes from the peer. An error means the connection is
  // dead (closeReason() says why, counted once): flush output() and close.
  Status receive(std::span<const std::uint8_t> bytes);
  Status receive(std::string_view bytes) {
    return receive(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
  // Appends frames to send to `out`, stopping once about `limit` bytes were added.
  std::size_t output(std::string& out, std::size_t limit = SIZE_MAX);
  // True when nothing more will be read or written: close the transport.
  bool finished() const;
  CloseReason closeReason() const { return reason_; }
  // Graceful: GOAWAY(NO_ERROR); open streams finish.
  void shutdown();

  std::vector<StreamEvent> takeEvents();

  // Per-stream pipes (ids from events / HboneClient::connect).
  std::size_t writable(std::int32_t stream) const;
  // Takes at most writable() bytes; returns how many.
  std::size_t write(std::int32_t stream, std::span<const std::uint8_t> bytes);
  std::size_t write(std::int32_t stream, std::string_view bytes) {
    return write(stream, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
  // Half-close: END_STREAM once the send buffer is drained.
  void closeWrite(std::int32_t stream);
  std::size_t readable(std::int32_t stream) const;
  // Moves up to `max` received bytes to `out` and reopens the windows by as much.
  std::size_t read(std::int32_t stream, std::string& out, std::size_t max = SIZE_MAX);
  // RST_STREAM with `errorCode` (default CANCEL); buffered data is dropped.
  void reset(std::int32_t stream, std::uint32_t errorCode = 0x8);
  bool peerEnded(std::int32_t stream) const;
  std::size_t streamCount() const { return streams_.size(); }
  const H2Limits& limits() const { return limits_; }

 protected:
  struct Stream {
    std::int32_t id = 0;
    std::string in;       // received, not yet read
    std::string out;      // accepted by write(), not yet framed
    bool outEnd = false;  // closeWrite() called
    bool dataAttached = false;
    bool deferred = false;
    bool blockedWrite = false;
    bool opened = false;
    bool announced = false;  // the owner knows this stream (events go out)
    bool peerEnd = false;
    bool closed = false;  // nghttp2 closed it; kept while `in` has unread bytes
    bool rejectAfterResponse = false;
    bool awaitingAnswer = false;  // server, deferred mode: kRequested emitted, no response yet
    std::size_t headerBytes = 0;
    // Server: the request's pseudo-headers, from the first one until the
    // request is answered. Held apart so that an open (idle) stream does not
    // carry five empty strings.
    struct RequestHead {
      std::string method, authority, path, scheme, protocol;
    };
    std::unique_ptr<RequestHead> request;
    int status = 0;  // client: the response's :status
    bool badHeader = false;
  };

  H2Session(bool server, H2Limits limits, HboneCounters* counters);
  Status init();
  Stream* find(std::int32_t id) const;
  Stream& create(std::int32_t id);
  void emit(StreamEvent e) { events_.push_back(std::move(e)); }
  void connectionError(CloseReason r);
  // Client: submits `:method CONNECT, :authority <authority>` with a data
  // provider; returns the new stream id or a nghttp2 error (< 0).
  std::int32_t submitConnect(const std::string& authority);
  // Server: submits `:status <status>`; 200 attaches the data provider, any
  // other status ends the stream and resets it once the response is sent.
  int submitResponse(Stream& s, int status);
  nghttp2_session* session() const { return session_; }
  HboneCounters& counters() { return *counters_; }

  // Role hooks.
  virtual void onHeadersComplete(Stream& s, const nghttp2_frame& frame) = 0;

 private:
  friend struct H2Callbacks;
  void dropIfDone(std::int32_t id);

  bool server_;
  H2Limits limits_;
  HboneCounters ownCounters_;
  HboneCounters* counters_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<StreamEvent> events_;
  std::string pendingOut_;  // frames produced inside receive() (a GOAWAY)
  CloseReason reason_ = CloseReason::kNone;
  bool dead_ = false;  // a receive() error: stop reading and writing
};

}  // namespace nodemesh::proxy::hbone
