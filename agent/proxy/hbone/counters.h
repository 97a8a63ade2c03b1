// Counters of the HBONE layer: why handshakes failed, why connections were
// closed, why tunnel requests were refused. One HboneCounters per worker (the
// sans-IO objects run on one thread, so plain integers); metrics sum them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace nodemesh::proxy::hbone {

// Why a TLS handshake failed (either side; the label is what this side saw).
enum class TlsFailure : std::uint8_t {
  kNone,
  kBadCertificate,  // presented certificate rejected (SPIFFE rules, wrong trust domain, bad chain, peer said
                    // bad_certificate)
  kUnknownCa,       // chain does not lead to the trust bundle (or the peer said unknown_ca)
  kExpired,         // a certificate is expired / not yet valid (or the peer said certificate_expired)
  kNoClientCert,    // the client presented no certificate (or the peer said certificate_required)
  kProtocol,        // anything else: not TLS, wrong version, no common ALPN "h2", decrypt error, ...
  kCount,
};

// Why a connection was closed by us (or by the peer's GOAWAY with an error).
enum class CloseReason : std::uint8_t {
  kNone,
  kTlsHandshake,        // see TlsFailure
  kTlsError,            // TLS failure after the handshake (bad record, alert)
  kBadPreface,          // the client's first bytes were not the HTTP/2 preface
  kFrameSize,           // a frame larger than SETTINGS_MAX_FRAME_SIZE, or of a wrong fixed size
  kProtocol,            // any other HTTP/2 connection error (PROTOCOL_ERROR)
  kCompression,         // HPACK error
  kFlowControl,         // window overflow / data beyond the window
  kHeaderListTooLarge,  // a header block over SETTINGS_MAX_HEADER_LIST_SIZE
  kFlood,               // too many control frames queued (nghttp2 flood protection)
  kPeerGoaway,          // the peer sent GOAWAY with an error code
  kInternal,            // a nghttp2 call failed (out of memory, callback failure)
  kCount,
};

// Why a tunnel request (one stream) was refused.
enum class StreamReject : std::uint8_t {
  kMethodNotAllowed,  // not CONNECT -> 405
  kBadRequest,        // :path / :scheme / :protocol on a plain CONNECT -> 400
  kBadAuthority,      // :authority not a literal IP:port -> 400
  kDenied,            // authorization said no -> 403
  kMalformed,         // nghttp2's HTTP messaging checks failed -> RST_STREAM PROTOCOL_ERROR
  kUnavailable,       // deferred answer: the owner could not reach the destination -> 503 (or another 5xx)
  kCount,
};

const char* toString(TlsFailure f);
const char* toString(CloseReason r);
const char* toString(StreamReject r);

struct HboneCounters {
  std::array<std::uint64_t, static_cast<std::size_t>(TlsFailure::kCount)> tlsFailures{};
  std::array<std::uint64_t, static_cast<std::size_t>(CloseReason::kCount)> closes{};
  std::array<std::uint64_t, static_cast<std::size_t>(StreamReject::kCount)> rejects{};
  std::uint64_t handshakes = 0;     // completed (both sides verified, ALPN h2)
  std::uint64_t streamsOpened = 0;  // tunnels established (server: 200 sent; client: 200 received)
  std::uint64_t streamsReset = 0;   // streams closed with an error code (either side)
  std::uint64_t bytesIn = 0;        // tunnel payload received (DATA)
  std::uint64_t bytesOut = 0;       // tunnel payload sent (DATA)

  std::uint64_t& of(TlsFailure f) { return tlsFailures[static_cast<std::size_t>(f)]; }
  std::uint64_t& of(CloseReason r) { return closes[static_cast<std::size_t>(r)]; }
  std::uint64_t& of(StreamReject r) { return rejects[static_cast<std::size_t>(r)]; }
  std::uint64_t get(TlsFailure f) const { return tlsFailures[static_cast<std::size_t>(f)]; }
  std::uint64_t get(CloseReason r) const { return closes[static_cast<std::size_t>(r)]; }
  std::uint64_t get(StreamReject r) const { return rejects[static_cast<std::size_t>(r)]; }
  friend bool operator==(const HboneCounters&, const HboneCounters&) = default;
};

}  // namespace nodemesh::proxy::hbone
