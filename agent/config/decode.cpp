#include "config/decode.h"

#include <string>

#include "config/limits.h"
#include "config/names.h"
#include "config/yaml_reader.h"

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

void decodeNode(const YAML::Node& node, state::Snapshot& out, Diagnostics& diag) {
  MapReader m(node, "node", {"name", "cgroup"}, diag);
  if (!m.valid()) return;
  out.nodeName = namedField(m, "name", true, checkDnsSubdomain, diag);
  out.servedCgroup = namedField(m, "cgroup", true, checkCgroupPath, diag);
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
  MapReader m(node, path, {"cgroup", "namespace", "serviceAccount", "labels"}, diag);
  if (!m.valid()) return;
  state::Workload w;
  w.cgroup = namedField(m, "cgroup", true, checkCgroupPath, diag);
  w.ns = namedField(m, "namespace", true, checkDnsLabel, diag);
  w.serviceAccount = m.has("serviceAccount")
                         ? namedField(m, "serviceAccount", false, checkDnsSubdomain, diag)
                         : std::string(kDefaultServiceAccount);
  if (m.has("labels")) decodeLabels(m.value("labels"), m.fieldPath("labels"), w, diag);
  out.sites.workloads.push_back({m.location(), m.fieldLocation("cgroup")});
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
  } else if (*mode == "mtls" || *mode == "http") {
    diag.add(m.fieldLocation("mode"), "mode '" + *mode + "' is not implemented by this build yet; use l4");
  } else {
    diag.add(m.fieldLocation("mode"), "must be one of: l4, got " + quoted(*mode));
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
  site.endpoints.push_back({m.location(), m.has("port") ? m.fieldLocation("port") : Location{}});
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

// Decodes each item of an optional top-level list with `decodeItem`.
template <typename DecodeItem>
void decodeList(MapReader& root, std::string_view key, Decoded& out, Diagnostics& diag, DecodeItem decodeItem) {
  if (!root.has(key)) return;
  const YAML::Node list = root.value(key);
  Location at = root.fieldLocation(key);
  if (!expectList(list, at, diag)) return;
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
             std::string("must be a map with the fields node, workloads, services; got ") + describe(root));
    return out;
  }
  MapReader m(root, "", {"node", "workloads", "services"}, diag);
  if (m.require("node")) decodeNode(m.value("node"), out.snapshot, diag);
  out.sites.serviceList = m.fieldLocation("services");
  decodeList(m, "workloads", out, diag, decodeWorkload);
  decodeList(m, "services", out, diag, decodeService);
  return out;
}

}  // namespace nodemesh::config
