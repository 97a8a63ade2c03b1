#include "proxy/hbone/counters.h"

namespace nodemesh::proxy::hbone {

const char* toString(TlsFailure f) {
  switch (f) {
    case TlsFailure::kNone:
      return "none";
    case TlsFailure::kBadCertificate:
      return "bad_certificate";
    case TlsFailure::kUnknownCa:
      return "unknown_ca";
    case TlsFailure::kExpired:
      return "expired";
    case TlsFailure::kNoClientCert:
      return "no_client_cert";
    case TlsFailure::kProtocol:
      return "protocol";
    case TlsFailure::kCount:
      break;
  }
  return "unknown";
}

const char* toString(CloseReason r) {
  switch (r) {
    case CloseReason::kNone:
      return "none";
    case CloseReason::kTlsHandshake:
      return "tls_handshake";
    case CloseReason::kTlsError:
      return "tls_error";
    case CloseReason::kBadPreface:
      return "bad_preface";
    case CloseReason::kFrameSize:
      return "frame_size";
    case CloseReason::kProtocol:
      return "protocol";
    case CloseReason::kCompression:
      return "compression";
    case CloseReason::kFlowControl:
      return "flow_control";
    case CloseReason::kHeaderListTooLarge:
      return "header_list_too_large";
    case CloseReason::kFlood:
      return "flood";
    case CloseReason::kPeerGoaway:
      return "peer_goaway";
    case CloseReason::kInternal:
      return "internal";
    case CloseReason::kCount:
      break;
  }
  return "unknown";
}

const char* toString(StreamReject r) {
  switch (r) {
    case StreamReject::kMethodNotAllowed:
      return "method_not_allowed";
    case StreamReject::kBadRequest:
      return "bad_request";
    case StreamReject::kBadAuthority:
      return "bad_authority";
    case StreamReject::kDenied:
      return "denied";
    case StreamReject::kMalformed:
      return "malformed";
    case StreamReject::kUnavailable:
      return "unavailable";
    case StreamReject::kCount:
      break;
  }
  return "unknown";
}

}  // namespace nodemesh::proxy::hbone
