#include "sources/kubernetes/objects.h"

#include <nlohmann/json.hpp>

#include "state/ip_address.h"

namespace nodemesh::kube {
namespace {

using nlohmann::json;

// Collects the first problem found while reading one object; later reads
// after a failure are no-ops, so decoders read straight through.
class Reader {
 public:
  explicit Reader(Kind kind) : kind_(kind) {}

  bool failed() const { return !problem_.empty(); }
  void fail(const std::string& field, const std::string& what) {
    if (problem_.empty()) problem_ = field + ": " + what;
  }
  Error error(const ObjectMeta& m) const {
    std::string who = m.name.empty() ? "(unnamed)" : m.key();
    return Error{std::string(toString(kind_)) + " " + who + ": " + problem_, 0};
  }

  // Child object; absent or null gives nullptr; another type is a problem.
  const json* object(const json& parent, const char* key, const std::string& field) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return nullptr;
    if (!it->is_object()) {
      fail(field, std::string("must be an object, got ") + it->type_name());
      return nullptr;
    }
    return &*it;
  }
  const json* array(const json& parent, const char* key, const std::string& field) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return nullptr;
    if (!it->is_array()) {
      fail(field, std::string("must be an array, got ") + it->type_name());
      return nullptr;
    }
    return &*it;
  }
  std::string string(const json& parent, const char* key, const std::string& field, bool required = false) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) fail(field, "is required");
      return {};
    }
    if (!it->is_string()) {
      fail(field, std::string("must be a string, got ") + it->type_name());
      return {};
    }
    return it->get<std::string>();
  }
  bool boolean(const json& parent, const char* key, const std::string& field) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return false;
    if (!it->is_boolean()) {
      fail(field, std::string("must be a boolean, got ") + it->type_name());
      return false;
    }
    return it->get<bool>();
  }
  // An IP literal; anything else is a problem (the API server only writes valid ones).
  std::string ipAddress(const json& parent, const char* key, const std::string& field) {
    std::string text = string(parent, key, field, true);
    if (!failed() && !state::IpAddress::parse(text)) fail(field, "must be an IP address, got \"" + text + "\"");
    return text;
  }
  // Each element of an array that must hold objects, with its field path.
  template <typename F>
  void objects(const json& parent, const char* key, const std::string& field, F&& each) {
    const json* a = array(parent, key, field);
    for (std::size_t i = 0; a != nullptr && i < a->size() && !failed(); ++i) {
      const std::string at = field + "[" + std::to_string(i) + "]";
      if (!(*a)[i].is_object()) {
        fail(at, std::string("must be an object, got ") + (*a)[i].type_name());
        break;
      }
      each((*a)[i], at);
    }
  }
  std::optional<std::uint16_t> port(const json& v, const std::string& field) {
    if (!v.is_number_integer()) {
      fail(field, std::string("must be an integer, got ") + v.type_name());
      return std::nullopt;
    }
    auto n = v.get<std::int64_t>();
    if (n < 1 || n > 65535) {
      fail(field, "must be 1..65535, got " + std::to_string(n));
      return std::nullopt;
    }
    return static_cast<std::uint16_t>(n);
  }
  std::map<std::string, std::string> stringMap(const json& parent, const char* key, const std::string& field) {
    std::map<std::string, std::string> out;
    const json* m = object(parent, key, field);
    if (m == nullptr) return out;
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (!it->is_string()) {
        fail(field + "." + it.key(), std::string("must be a string, got ") + it->type_name());
        continue;
      }
      out.emplace(it.key(), it->get<std::string>());
    }
    return out;
  }

  ObjectMeta meta(const json& j, bool namespaced) {
    ObjectMeta m;
    if (!j.is_object()) {
      fail("object", std::string("must be a JSON object, got ") + j.type_name());
      return m;
    }
    const json* md = object(j, "metadata", "metadata");
    if (md == nullptr) {
      fail("metadata", "is required");
      return m;
    }
    m.name = string(*md, "name", "metadata.name", true);
    if (!failed() && m.name.empty()) fail("metadata.name", "must not be empty");
    m.ns = string(*md, "namespace", "metadata.namespace", namespaced);
    if (!namespaced) m.ns.clear();
    m.uid = string(*md, "uid", "metadata.uid");
    m.labels = stringMap(*md, "labels", "metadata.labels");
    m.annotations = stringMap(*md, "annotations", "metadata.annotations");
    return m;
  }

 private:
  Kind kind_;
  std::string problem_;
};

}  // namespace

const char* toString(Kind k) {
  switch (k) {
    case Kind::kService:
      return "Service";
    case Kind::kEndpointSlice:
      return "EndpointSlice";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kPod:
      return "Pod";
    case Kind::kNode:
      return "Node";
  }
  return "?";
}

Result<ServiceObject> decodeService(const json& j) {
  Reader r(Kind::kService);
  ServiceObject s;
  s.meta = r.meta(j, true);
  const json* spec = r.failed() ? nullptr : r.object(j, "spec", "spec");
  if (spec != nullptr) {
    s.type = r.string(*spec, "type", "spec.type");
    if (s.type.empty()) s.type = "ClusterIP";
    if (const json* ips = r.array(*spec, "clusterIPs", "spec.clusterIPs")) {
      for (std::size_t i = 0; i < ips->size(); ++i) {
        if (!(*ips)[i].is_string()) {
          r.fail("spec.clusterIPs[" + std::to_string(i) + "]", "must be a string");
          break;
        }
        s.clusterIPs.push_back((*ips)[i].get<std::string>());
      }
    }
    if (s.clusterIPs.empty()) {
      std::string ip = r.string(*spec, "clusterIP", "spec.clusterIP");
      if (!ip.empty()) s.clusterIPs.push_back(ip);
    }
    if (const json* ports = r.array(*spec, "ports", "spec.ports")) {
      for (std::size_t i = 0; i < ports->size() && !r.failed(); ++i) {
        const std::string at = "spec.ports[" + std::to_string(i) + "]";
        const json& p = (*ports)[i];
        if (!p.is_object()) {
          r.fail(at, "must be an object");
          break;
        }
        ServicePortSpec sp;
        sp.name = r.string(p, "name", at + ".name");
        sp.protocol = r.string(p, "protocol", at + ".protocol");
        if (sp.protocol.empty()) sp.protocol = "TCP";
        auto pit = p.find("port");
        if (pit == p.end()) {
          r.fail(at + ".port", "is required");
          break;
        }
        sp.port = r.port(*pit, at + ".port").value_or(0);
        auto tit = p.find("targetPort");
        if (tit == p.end() || tit->is_null()) {
          sp.targetPortNumber = sp.port;  // the API server's default
        } else if (tit->is_string()) {
          // IntOrString: a numeric string is a number.
          std::string t = tit->get<std::string>();
          if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos && t.size() <= 5) {
            sp.targetPortNumber = r.port(json(std::stoi(t)), at + ".targetPort");
          } else if (t.empty()) {
            r.fail(at + ".targetPort", "must not be empty");
          } else {
            sp.targetPortName = t;
          }
        } else {
          sp.targetPortNumber = r.port(*tit, at + ".targetPort");
        }
        s.ports.push_back(std::move(sp));
      }
    }
  } else if (!r.failed()) {
    r.fail("spec", "is required");
  }
  if (r.failed()) return r.error(s.meta);
  return s;
}

Result<EndpointSliceObject> decodeEndpointSlice(const json& j) {
  Reader r(Kind::kEndpointSlice);
  EndpointSliceObject e;
  e.meta = r.meta(j, true);
  if (r.failed()) return r.error(e.meta);
  e.addressType = r.string(j, "addressType", "addressType", true);
  auto label = e.meta.labels.find(kServiceNameLabel);
  if (label != e.meta.labels.end()) e.serviceName = label->second;
  if (const json* eps = r.array(j, "endpoints", "endpoints")) {
    for (std::size_t i = 0; i < eps->size() && !r.failed(); ++i) {
      const std::string at = "endpoints[" + std::to_string(i) + "]";
      const json& ep = (*eps)[i];
      if (!ep.is_object()) {
        r.fail(at, "must be an object");
        break;
      }
      SliceEndpoint se;
      const json* addrs = r.array(ep, "addresses", at + ".addresses");
      if (addrs == nullptr && !r.failed()) r.fail(at + ".addresses", "is required");
      if (addrs != nullptr) {
        for (std::size_t a = 0; a < addrs->size(); ++a) {
          if (!(*addrs)[a].is_string()) {
            r.fail(at + ".addresses[" + std::to_string(a) + "]", "must be a string");
            break;
          }
          se.addresses.push_back((*addrs)[a].get<std::string>());
        }
      }
      if (const json* cond = r.object(ep, "conditions", at + ".conditions")) {
        auto rit = cond->find("ready");
        if (rit != cond->end() && !rit->is_null()) {
          if (!rit->is_boolean())
            r.fail(at + ".conditions.ready", std::string("must be a boolean, got ") + rit->type_name());
          else
            se.ready = rit->get<bool>();
        }
      }
      se.nodeName = r.string(ep, "nodeName", at + ".nodeName");
      e.endpoints.push_back(std::move(se));
    }
  }
  if (const json* ports = r.array(j, "ports", "ports")) {
    for (std::size_t i = 0; i < ports->size() && !r.failed(); ++i) {
      const std::string at = "ports[" + std::to_string(i) + "]";
      const json& p = (*ports)[i];
      if (!p.is_object()) {
        r.fail(at, "must be an object");
        break;
      }
      SlicePort sp;
      sp.name = r.string(p, "name", at + ".name");
      sp.protocol = r.string(p, "protocol", at + ".protocol");
      if (sp.protocol.empty()) sp.protocol = "TCP";
      auto pit = p.find("port");
      if (pit != p.end() && !pit->is_null()) sp.port = r.port(*pit, at + ".port");
      e.ports.push_back(std::move(sp));
    }
  }
  if (r.failed()) return r.error(e.meta);
  return e;
}

Result<NamespaceObject> decodeNamespace(const json& j) {
  Reader r(Kind::kNamespace);
  NamespaceObject n;
  n.meta = r.meta(j, false);
  if (r.failed()) return r.error(n.meta);
  return n;
}

Result<PodObject> decodePod(const json& j) {
  Reader r(Kind::kPod);
  PodObject p;
  p.meta = r.meta(j, true);
  if (!r.failed() && p.meta.uid.empty()) r.fail("metadata.uid", "is required (it names the pod's cgroup)");
  if (!r.failed()) {
    if (const json* spec = r.object(j, "spec", "spec")) {
      p.nodeName = r.string(*spec, "nodeName", "spec.nodeName");
      p.serviceAccount = r.string(*spec, "serviceAccountName", "spec.serviceAccountName");
      p.hostNetwork = r.boolean(*spec, "hostNetwork", "spec.hostNetwork");
    }
    if (const json* status = r.object(j, "status", "status")) {
      p.phase = r.string(*status, "phase", "status.phase");
      p.qosClass = r.string(*status, "qosClass", "status.qosClass");
      r.objects(*status, "podIPs", "status.podIPs",
                [&](const json& e, const std::string& at) { p.podIPs.push_back(r.ipAddress(e, "ip", at + ".ip")); });
      // podIPs came with Kubernetes 1.16; an object with podIP alone is still valid.
      if (!r.failed() && p.podIPs.empty() && !r.string(*status, "podIP", "status.podIP").empty())
        p.podIPs.push_back(r.ipAddress(*status, "podIP", "status.podIP"));
    }
    if (!r.failed() && !p.qosClass.empty() && p.qosClass != "Guaranteed" && p.qosClass != "Burstable" &&
        p.qosClass != "BestEffort")
      r.fail("status.qosClass", "must be Guaranteed, Burstable or BestEffort, got \"" + p.qosClass + "\"");
  }
  if (p.serviceAccount.empty()) p.serviceAccount = "default";
  if (r.failed()) return r.error(p.meta);
  return p;
}

Result<NodeObject> decodeNode(const json& j) {
  Reader r(Kind::kNode);
  NodeObject n;
  n.meta = r.meta(j, false);
  const json* status = r.failed() ? nullptr : r.object(j, "status", "status");
  if (status != nullptr) {
    r.objects(*status, "addresses", "status.addresses", [&](const json& a, const std::string& at) {
      NodeAddress na;
      na.type = r.string(a, "type", at + ".type", true);
      // Only the IP types are used; a Hostname entry holds a name.
      na.address = na.type == "InternalIP" || na.type == "ExternalIP" ? r.ipAddress(a, "address", at + ".address")
                                                                       : r.string(a, "address", at + ".address");
      n.addresses.push_back(std::move(na));
    });
    r.objects(*status, "conditions", "status.conditions", [&](const json& c, const std::string& at) {
      std::string type = r.string(c, "type", at + ".type", true);
      std::string st = r.string(c, "status", at + ".status", true);
      if (type == "Ready") n.ready = st == "True";
    });
  }
  if (r.failed()) return r.error(n.meta);
  return n;
}

}  // namespace nodemesh::kube
