#include "config/decode.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "config/limits.h"
#include "config/names.h"
#include "config/yaml_reader.h"
#include "identity/spiffe_id.h"
#include "policy/authorization.h"

namespace nodemesh::config {
namespace {

constexpr std::int64_t kMinPort = 1;
constexpr std::int64_t kMaxPort = 65535;
constexpr std::int64_t kMinWeight = 1;
constexpr std::int64_t kMaxWeight = 65535;
constexpr const char* kDefaultServiceAccount = "default";

std::string indexed(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string lowercase(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// Reads a string field and applies a syntax rule; the raw text is kept even
// when it is invalid so later uniqueness checks do not report it twice.
std::string namedField(MapReader& m, std::string_view key, bool required,
                       std::string (*rule)(std::string_view), Diagnostics& diag) {
  std::optional<std::string> text = m.string(key, required);
  if (!text) return {};
  if (std::string problem = rule(*text); !problem.empty()) diag.add(m.fieldLocation(key), problem);
  return *text;
}

// One of a fixed set of words (case-sensitive), e.g. mesh: enabled|disabled.
template <typename T>
std::optional<T> enumField(MapReader& m, std::string_view key,
                           std::initializer_list<std::pair<std::string_view, T>> choices, Diagnostics& diag) {
  std::optional<std::string> text = m.string(key, false);
  if (!text) return std::nullopt;
  std::string names;
  for (const auto& [word, value] : choices) {
    if (*text == word) return value;
    names += (names.empty() ? "" : ", ") + std::string(word);
  }
  diag.add(m.fieldLocation(key), "must be one of: " + names + ", got " + quoted(*text));
  return std::nullopt;
}

const std::initializer_list<std::pair<std::string_view, bool>> kMeshChoices = {{"enabled", true},
                                                                               {"disabled", false}};
const std::initializer_list<std::pair<std::string_view, state::InboundMode>> kInboundChoices = {
    {"strict", state::InboundMode::kStrict}, {"permissive", state::InboundMode::kPermissive}};

// A list field of `m`: reports a non-list and a list longer than `max`; returns
// the list (an undefined node when it is absent or unusable).
YAML::Node listField(MapReader& m, std::string_view key, std::size_t max, const char* noun, Diagnostics& diag) {
  if (!m.has(key)) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node list = m.value(key);
  Location at = m.fieldLocation(key);
  if (!expectList(list, at, diag)) return YAML::Node(YAML::NodeType::Undefined);
  if (list.size() > max) {
    diag.add(at, "has " + std::to_string(list.size()) + " " + noun + "; at most " + std::to_string(max) +
                     " are allowed");
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return list;
}

std::optional<state::IpAddress> readAddress(const YAML::Node& node, const Location& at, Diagnostics& diag) {
  std::optional<std::string> text = readString(node, at, diag);
  if (!text) return std::nullopt;
  std::optional<state::IpAddress> ip = state::IpAddress::parse(*text);
  if (!ip) {
    diag.add(at, "must be an IPv4 or IPv6 address, got " + quoted(*text));
    return std::nullopt;
  }
  if (ip->isUnspecified()) {
    diag.add(at, "must not be the unspecified address " + ip->toString());
    return std::nullopt;
  }
  return ip;
}

void decodeNode(const YAML::Node& node, Decoded& out, Diagnostics& diag) {
  MapReader m(node, "node", {"name", "cgroup", "address"}, diag);
  out.sites.node = m.location();
  out.sites.nodeName = m.fieldLocation("name");
  out.sites.nodeAddress = m.fieldLocation("address");
  if (!m.valid()) return;
  out.snapshot.nodeName = namedField(m, "name", true, checkDnsSubdomain, diag);
  out.snapshot.servedCgroup = namedField(m, "cgroup", true, checkCgroupPath, diag);
  if (m.has("address")) out.snapshot.nodeAddress = readAddress(m.value("address"), m.fieldLocation("address"), diag);
}

void decodeCa(const YAML::Node& node, state::MeshSettings& mesh, Diagnostics& diag) {
  MapReader m(node, "mesh.ca", {"certFile", "keyFile"}, diag);
  if (!m.valid()) return;
  mesh.caCertFile = namedField(m, "certFile", false, checkAbsoluteFilePath, diag);
  mesh.caKeyFile = namedField(m, "keyFile", false, checkAbsoluteFilePath, diag);
  // Both or neither: a certificate without its key (or the reverse) cannot sign.
  if (m.has("certFile") && !m.has("keyFile")) {
    diag.add(m.fieldLocation("keyFile"),
             "is required when certFile is given (give both files, or neither for a development CA)");
  } else if (m.has("keyFile") && !m.has("certFile")) {
    diag.add(m.fieldLocation("certFile"),
             "is required when keyFile is given (give both files, or neither for a development CA)");
  }
}

void decodeMesh(const YAML::Node& node, Decoded& out, Diagnostics& diag) {
  MapReader m(node, "mesh",
              {"trustDomain", "ca", "certificateTtlSeconds", "outboundPort", "inboundPort", "workers",
               "socketRedirect"},
              diag);
  if (!m.valid()) return;
  state::MeshSettings& mesh = out.snapshot.mesh;
  if (std::optional<std::string> td = m.string("trustDomain", false)) {
    out.sites.trustDomain = m.fieldLocation("trustDomain");
    if (Status ok = identity::checkTrustDomain(*td); !ok) diag.add(out.sites.trustDomain, ok.error().message);
    mesh.trustDomain = *td;
  }
  if (m.has("ca")) decodeCa(m.value("ca"), mesh, diag);
  if (auto ttl = m.integer("certificateTtlSeconds", kMinCertificateTtlSeconds, kMaxCertificateTtlSeconds, false)) {
    mesh.certificateTtlSeconds = static_cast<std::uint32_t>(*ttl);
  }
  std::optional<std::int64_t> outbound = m.integer("outboundPort", kMinPort, kMaxPort, false);
  std::optional<std::int64_t> inbound = m.integer("inboundPort", kMinPort, kMaxPort, false);
  if (outbound) mesh.outboundPort = static_cast<std::uint16_t>(*outbound);
  if (inbound) mesh.inboundPort = static_cast<std::uint16_t>(*inbound);
  // Only compare ports that are valid (or defaulted): a bad one was reported already.
  bool outboundOk = outbound || !m.has("outboundPort");
  bool inboundOk = inbound || !m.has("inboundPort");
  if (outboundOk && inboundOk && mesh.outboundPort == mesh.inboundPort) {
    std::string_view at = m.has("inboundPort") ? "inboundPort" : "outboundPort";
    diag.add(m.fieldLocation(at), "inboundPort and outboundPort must differ, both are " +
                                      std::to_string(mesh.inboundPort) +
                                      " (one listener takes captured connections, the other HBONE from peers)");
  }
  if (auto workers = m.integer("workers", 0, kMaxProxyWorkers, false)) mesh.workers = static_cast<unsigned>(*workers);
  if (std::optional<bool> redirect = m.boolean("socketRedirect")) mesh.socketRedirect = *redirect;
}

void decodePeer(const YAML::Node& node, const std::string& path, Decoded& out, Diagnostics& diag) {
  MapReader m(node, path, {"name", "address"}, diag);
  if (!m.valid()) return;
  state::PeerNode peer;
  PeerSite site{m.location(), m.fieldLocation("name"), m.fieldLocation("address"), false};
  peer.name = namedField(m, "name", true, checkDnsSubdomain, diag);
  if (m.require("address")) {
    if (std::optional<state::IpAddress> ip = readAddress(m.value("address"), site.address, diag)) {
      peer.address = *ip;
      site.addressValid = true;
    }
  }
  out.snapshot.peers.push_back(std::move(peer));
  out.sites.peers.push_back(std::move(site));
}

void decodeLimits(const YAML::Node& node, const std::string& path, state::TenancyLimits& out, Diagnostics& diag) {
  MapReader m(node, path, {"maxConnections", "maxBufferedBytes"}, diag);
  if (!m.valid()) return;
  if (auto n = m.integer("maxConnections", 0, std::numeric_limits<std::uint32_t>::max(), false)) {
    out.maxConnections = static_cast<std::uint32_t>(*n);
  }
  if (auto n = m.integer("maxBufferedBytes", 0, std::numeric_limits<std::int64_t>::max(), false)) {
    out.maxBufferedBytes = static_cast<std::uint64_t>(*n);
  }
}

void decodeNamespace(const YAML::Node& node, const std::string& path, Decoded& out, Diagnostics& diag) {
  MapReader m(node, path, {"name", "mesh", "inbound", "limits"}, diag);
  if (!m.valid()) return;
  state::Namespace ns;
  ns.name = namedField(m, "name", true, checkDnsLabel, diag);
  if (auto meshed = enumField(m, "mesh", kMeshChoices, diag)) ns.meshed = *meshed;
  if (auto inbound = enumField(m, "inbound", kInboundChoices, diag)) ns.inbound = *inbound;
  if (m.has("limits")) decodeLimits(m.value("limits"), m.fieldPath("limits"), ns.limits, diag);
  out.snapshot.namespaces.push_back(std::move(ns));
  out.sites.namespaces.push_back({m.location(), m.fieldLocation("name")});
}

void decodeLabels(const YAML::Node& node, const std::string& path, state::Workload& out, Diagnostics& diag) {
  if (!node.IsMap()) {
    diag.add(locate(node, path), std::string("must be a map of strings to strings, got ") + describe(node));
    return;
  }
  for (auto it = node.begin(); it != node.end() && !diag.full(); ++it) {
    if (!diag.visit()) return;
    const YAML::Node keyNode = it->first;  // copies: it-> yields a temporary proxy
    const YAML::Node valueNode = it->second;
    if (!keyNode.IsScalar() || keyNode.Scalar().empty()) {
      diag.add(locate(keyNode, path), "label keys must be non-empty strings");
      continue;
    }
    const std::string key = keyNode.Scalar();
    Location at = locate(valueNode, path + "." + key);
    // A null value is an empty label value, as in Kubernetes.
    std::string value;
    if (present(valueNode)) {
      std::optional<std::string> text = readString(valueNode, at, diag);
      if (!text) continue;
      value = *text;
    }
    if (!out.labels.emplace(key, value).second) diag.add(locate(keyNode, at.path), "label is given more than once");
  }
}

void decodeWorkload(const YAML::Node& node, const std::string& path, Decoded& out, Diagnostics& diag) {
  MapReader m(node, path, {"cgroup", "namespace", "serviceAccount", "labels", "mesh", "inbound", "addresses"}, diag);
  if (!m.valid()) return;
  state::Workload w;
  WorkloadSite site{m.location(), m.fieldLocation("cgroup"), std::nullopt, std::nullopt, {}};
  w.cgroup = namedField(m, "cgroup", true, checkCgroupPath, diag);
  w.ns = namedField(m, "namespace", true, checkDnsLabel, diag);
  w.serviceAccount = m.has("serviceAccount")
                         ? namedField(m, "serviceAccount", false, checkDnsSubdomain, diag)
                         : std::string(kDefaultServiceAccount);
  if (m.has("labels")) decodeLabels(m.value("labels"), m.fieldPath("labels"), w, diag);
  site.meshed = enumField(m, "mesh", kMeshChoices, diag);
  site.inbound = enumField(m, "inbound", kInboundChoices, diag);
  const YAML::Node addresses = listField(m, "addresses", kMaxAddressesPerWorkload, "addresses", diag);
  for (std::size_t i = 0; addresses.IsDefined() && i < addresses.size(); ++i) {
    Location itemAt = locate(addresses[i], indexed(m.fieldPath("addresses"), i));
    if (std::optional<state::IpAddress> ip = readAddress(addresses[i], itemAt, diag)) {
      w.addresses.push_back(*ip);
      site.addresses.push_back(itemAt);
    }
  }
  out.sites.workloads.push_back(std::move(site));
  out.snapshot.workloads.push_back(std::move(w));
}

void decodeVips(MapReader& m, state::Service& svc, ServiceSite& site, Diagnostics& diag) {
  if (!m.require("vips")) return;
  const YAML::Node list = m.value("vips");
  Location at = m.fieldLocation("vips");
  if (!expectList(list, at, diag)) return;
  if (list.size() == 0) {
    diag.add(at, "must list at least one address");
    return;
  }
  if (list.size() > kMaxVipsPerService) {
    diag.add(at, "must list at most " + std::to_string(kMaxVipsPerService) +
                     " addresses (one IPv4 and one IPv6), got " + std::to_string(list.size()));
    return;
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    Location itemAt = locate(list[i], indexed(at.path, i));
    if (std::optional<state::IpAddress> ip = readAddress(list[i], itemAt, diag)) {
      svc.vips.push_back(*ip);
      site.vips.push_back(itemAt);
    }
  }
}

void decodePort(const YAML::Node& node, const std::string& path, state::Service& svc, ServiceSite& site,
                Diagnostics& diag) {
  MapReader m(node, path, {"name", "port", "protocol", "targetPort"}, diag);
  if (!m.valid()) return;
  state::ServicePort port;
  if (m.has("name")) port.name = namedField(m, "name", false, checkDnsLabel, diag);
  std::optional<std::int64_t> number = m.integer("port", kMinPort, kMaxPort, true);
  if (std::optional<std::string> proto = m.string("protocol", false)) {
    std::string lower = lowercase(*proto);  // Kubernetes writes TCP/UDP
    if (lower == "tcp") {
      port.protocol = state::Protocol::kTcp;
    } else if (lower == "udp") {
      port.protocol = state::Protocol::kUdp;
    } else {
      diag.add(m.fieldLocation("protocol"), "must be tcp or udp, got " + quoted(*proto));
    }
  }
  std::optional<std::int64_t> target = m.integer("targetPort", kMinPort, kMaxPort, false);
  if (!number) return;  // nothing useful to validate against without the port
  port.port = static_cast<std::uint16_t>(*number);
  port.targetPort = static_cast<std::uint16_t>(target.value_or(*number));
  svc.ports.push_back(std::move(port));
  site.ports.push_back(m.location());
}

void decodePorts(MapReader& m, state::Service& svc, ServiceSite& site, Diagnostics& diag) {
  if (!m.require("ports")) return;
  const YAML::Node list = m.value("ports");
  Location at = m.fieldLocation("ports");
  if (!expectList(list, at, diag)) return;
  site.portsWritten = list.size();
  if (list.size() == 0) {
    diag.add(at, "must list at least one port");
    return;
  }
  for (std::size_t i = 0; i < list.size() && !diag.full(); ++i) {
    if (!diag.visit()) return;
    decodePort(list[i], indexed(at.path, i), svc, site, diag);
  }
}

void decodeMode(MapReader& m, state::Service& svc, Diagnostics& diag) {
  std::optional<std::string> mode = m.string("mode", false);
  if (!mode) return;
  if (*mode == "l4") {
    svc.mode = state::ServiceMode::kL4;
  } else if (*mode == "mtls") {
    svc.mode = state::ServiceMode::kMtls;
  } else if (*mode == "http") {
    diag.add(m.fieldLocation("mode"), "mode '" + *mode + "' is not implemented by this build yet; use l4 or mtls");
  } else {
    diag.add(m.fieldLocation("mode"), "must be one of: l4, mtls, got " + quoted(*mode));
  }
}

void decodeLoadBalancing(MapReader& m, state::Service& svc, Diagnostics& diag) {
  std::optional<std::string> lb = m.string("loadBalancing", false);
  if (!lb) return;
  if (*lb == "random") {
    svc.lb = state::LbAlgorithm::kRandom;
  } else if (*lb == "maglev") {
    svc.lb = state::LbAlgorithm::kMaglev;
  } else {
    diag.add(m.fieldLocation("loadBalancing"), "must be one of: random, maglev, got " + quoted(*lb));
  }
}

void decodeEndpoint(const YAML::Node& node, const std::string& path, state::Service& svc, ServiceSite& site,
                    Diagnostics& diag) {
  MapReader m(node, path, {"address", "port", "weight", "ready", "node"}, diag);
  if (!m.valid()) return;
  state::Endpoint ep;
  std::optional<state::IpAddress> address;
  if (m.require("address")) address = readAddress(m.value("address"), m.fieldLocation("address"), diag);
  if (std::optional<std::int64_t> port = m.integer("port", kMinPort, kMaxPort, false)) {
    ep.port = static_cast<std::uint16_t>(*port);
  }
  if (std::optional<std::int64_t> weight = m.integer("weight", kMinWeight, kMaxWeight, false)) {
    ep.weight = static_cast<std::uint32_t>(*weight);
  }
  if (std::optional<bool> ready = m.boolean("ready")) ep.ready = *ready;
  if (std::optional<std::string> nodeName = m.string("node", false)) ep.node = *nodeName;
  if (!address) return;
  ep.address = *address;
  svc.endpoints.push_back(std::move(ep));
  site.endpoints.push_back({m.location(), m.has("port") ? m.fieldLocation("port") : Location{},
                            m.has("node") ? m.fieldLocation("node") : Location{}});
}

void decodeEndpoints(MapReader& m, state::Service& svc, ServiceSite& site, Diagnostics& diag) {
  if (!m.has("endpoints")) return;  // a service may have no backends yet
  const YAML::Node list = m.value("endpoints");
  Location at = m.fieldLocation("endpoints");
  if (!expectList(list, at, diag)) return;
  if (list.size() > kMaxEndpointsPerService) {
    diag.add(at, "has " + std::to_string(list.size()) + " endpoints; at most " +
                     std::to_string(kMaxEndpointsPerService) + " are allowed per service");
    return;
  }
  for (std::size_t i = 0; i < list.size() && !diag.full(); ++i) {
    if (!diag.visit()) return;
    decodeEndpoint(list[i], indexed(at.path, i), svc, site, diag);
  }
}

void decodeService(const YAML::Node& node, const std::string& path, Decoded& out, Diagnostics& diag) {
  MapReader m(node, path, {"name", "namespace", "vips", "ports", "mode", "loadBalancing", "endpoints"}, diag);
  if (!m.valid()) return;
  state::Service svc;
  ServiceSite site;
  site.item = m.location();
  site.name = m.fieldLocation("name");
  svc.name = namedField(m, "name", true, checkDnsLabel, diag);
  svc.ns = namedField(m, "namespace", true, checkDnsLabel, diag);
  decodeVips(m, svc, site, diag);
  decodePorts(m, svc, site, diag);
  decodeMode(m, svc, diag);
  decodeLoadBalancing(m, svc, diag);
  decodeEndpoints(m, svc, site, diag);
  out.snapshot.services.push_back(std::move(svc));
  out.sites.services.push_back(std::move(site));
}

// A rule's list of names (namespaces): each checked by `rule`, each once.
std::vector<std::string> nameList(MapReader& m, std::string_view key, std::string (*rule)(std::string_view),
                                  Diagnostics& diag) {
  std::vector<std::string> out;
  const YAML::Node list = listField(m, key, kMaxRuleListEntries, "entries", diag);
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; list.IsDefined() && i < list.size() && !diag.full(); ++i) {
    Location at = locate(list[i], indexed(m.fieldPath(key), i));
    std::optional<std::string> text = readString(list[i], at, diag);
    if (!text) continue;
    if (std::string problem = rule(*text); !problem.empty()) {
      diag.add(at, problem);
      continue;
    }
    if (!seen.insert(*text).second) {
      diag.add(at, quoted(*text) + " is listed more than once");
      continue;
    }
    out.push_back(*text);
  }
  return out;
}

void decodeRuleFrom(const YAML::Node& node, const std::string& path, state::AuthorizationRule& rule, RuleSite& site,
                    Diagnostics& diag) {
  MapReader m(node, path, {"identities", "namespaces"}, diag);
  if (!m.valid()) return;
  const YAML::Node ids = listField(m, "identities", kMaxRuleListEntries, "entries", diag);
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; ids.IsDefined() && i < ids.size() && !diag.full(); ++i) {
    Location at = locate(ids[i], indexed(m.fieldPath("identities"), i));
    std::optional<std::string> text = readString(ids[i], at, diag);
    if (!text) continue;
    Result<identity::SpiffeId> id = identity::SpiffeId::parse(*text);
    if (!id) {
      diag.add(at, id.error().message);
      continue;
    }
    if (!id->workloadNamespace()) {
      diag.add(at, "must be a workload identity spiffe://<trust domain>/ns/<namespace>/sa/<service account>, got " +
                       quoted(*text) + " (no workload has any other identity, so the rule could never match)");
      continue;
    }
    if (!seen.insert(*text).second) {
      diag.add(at, quoted(*text) + " is listed more than once");
      continue;
    }
    rule.fromIdentities.push_back(*text);
    site.identities.push_back(at);
  }
  rule.fromNamespaces = nameList(m, "namespaces", checkDnsLabel, diag);
}

void decodeRuleTo(const YAML::Node& node, const std::string& path, state::AuthorizationRule& rule,
                  Diagnostics& diag) {
  MapReader m(node, path, {"namespaces", "ports"}, diag);
  if (!m.valid()) return;
  rule.toNamespaces = nameList(m, "namespaces", checkDnsLabel, diag);
  const YAML::Node ports = listField(m, "ports", kMaxRuleListEntries, "entries", diag);
  std::set<std::int64_t> seen;
  for (std::size_t i = 0; ports.IsDefined() && i < ports.size() && !diag.full(); ++i) {
    Location at = locate(ports[i], indexed(m.fieldPath("ports"), i));
    std::optional<std::int64_t> port = readInteger(ports[i], at, kMinPort, kMaxPort, diag);
    if (!port) continue;
    if (!seen.insert(*port).second) {
      diag.add(at, "port " + std::to_string(*port) + " is listed more than once");
      continue;
    }
    rule.toPorts.push_back(static_cast<std::uint16_t>(*port));
  }
}

void decodeRule(const YAML::Node& node, const std::string& path, Decoded& out, Diagnostics& diag) {
  MapReader m(node, path, {"name", "action", "from", "to"}, diag);
  if (!m.valid()) return;
  state::AuthorizationRule rule;
  RuleSite site{m.location(), m.fieldLocation("name"), {}};
  rule.name = namedField(m, "name", true, checkDnsLabel, diag);
  if (rule.name == policy::kDefaultRule || rule.name == policy::kNoMatchingAllowRule) {
    diag.add(site.name, "the name " + quoted(rule.name) +
                            " is reserved (decisions that no rule made report it); choose another");
  }
  if (m.require("action")) {
    using state::RuleAction;
    if (auto action = enumField(m, "action", {std::pair{std::string_view("allow"), RuleAction::kAllow},
                                              std::pair{std::string_view("deny"), RuleAction::kDeny}},
                                diag)) {
      rule.action = *action;
    }
  }
  if (m.has("from")) decodeRuleFrom(m.value("from"), m.fieldPath("from"), rule, site, diag);
  if (m.has("to")) decodeRuleTo(m.value("to"), m.fieldPath("to"), rule, diag);
  out.snapshot.authorization.push_back(std::move(rule));
  out.sites.rules.push_back(std::move(site));
}

// Decodes each item of an optional top-level list with `decodeItem`.
template <typename DecodeItem>
void decodeList(MapReader& root, std::string_view key, Decoded& out, Diagnostics& diag, DecodeItem decodeItem,
                std::size_t max = std::numeric_limits<std::size_t>::max(), const char* noun = "entries") {
  const YAML::Node list = listField(root, key, max, noun, diag);
  if (!list.IsDefined()) return;
  Location at = root.fieldLocation(key);
  for (std::size_t i = 0; i < list.size() && !diag.full(); ++i) {
    if (!diag.visit()) return;
    decodeItem(list[i], indexed(at.path, i), out, diag);
  }
}

}  // namespace

Decoded decodeDocument(const YAML::Node& root, Diagnostics& diag) {
  Decoded out;
  if (!root.IsMap()) {
    diag.add(locate(root, "(top level)"),
             std::string("must be a map with the fields node, mesh, nodes, namespaces, workloads, services, "
                         "authorization; got ") +
                 describe(root));
    return out;
  }
  MapReader m(root, "", {"node", "mesh", "nodes", "namespaces", "workloads", "services", "authorization"}, diag);
  out.sites.node = m.fieldLocation("node");
  out.sites.nodeName = out.sites.nodeAddress = out.sites.node;
  if (m.require("node")) decodeNode(m.value("node"), out, diag);
  if (m.has("mesh")) decodeMesh(m.value("mesh"), out, diag);
  out.sites.serviceList = m.fieldLocation("services");
  decodeList(m, "nodes", out, diag, decodePeer, kMaxPeers, "nodes");
  decodeList(m, "namespaces", out, diag, decodeNamespace, kMaxNamespaces, "namespaces");
  decodeList(m, "workloads", out, diag, decodeWorkload);
  decodeList(m, "services", out, diag, decodeService);
  decodeList(m, "authorization", out, diag, decodeRule, kMaxAuthorizationRules, "rules");
  return out;
}

Decoded decodeMeshDocument(const YAML::Node& root, Diagnostics& diag) {
  Decoded out;
  if (!root.IsMap()) {
    diag.add(locate(root, "(top level)"), std::string("must be a map with the field mesh; got ") + describe(root));
    return out;
  }
  MapReader m(root, "", {"mesh"}, diag);
  // "mesh:" with nothing under it (a ConfigMap with every setting commented
  // out) means the defaults, like an absent one.
  if (m.has("mesh") && !m.value("mesh").IsNull()) decodeMesh(m.value("mesh"), out, diag);
  return out;
}

}  // namespace nodemesh::config
