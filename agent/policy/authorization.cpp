#include "policy/authorization.h"

#include <algorithm>
#include <set>

#include "identity/spiffe_id.h"

namespace nodemesh::policy {
namespace {

template <typename T>
void sortUnique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool containsSorted(const std::vector<std::string>& v, std::string_view s) {
  auto it = std::lower_bound(v.begin(), v.end(), s, [](const std::string& a, std::string_view b) { return a < b; });
  return it != v.end() && *it == s;
}

// <ns> of spiffe://<td>/ns/<ns>/sa/<sa>, else empty. No validation beyond the
// shape: the identity comes from a verified certificate.
std::string_view namespaceOfIdentity(std::string_view id) {
  constexpr std::string_view kScheme = "spiffe://";
  if (id.substr(0, kScheme.size()) != kScheme) return {};
  id.remove_prefix(kScheme.size());
  auto slash = id.find('/');
  if (slash == std::string_view::npos) return {};
  id.remove_prefix(slash);  // "/ns/<ns>/sa/<sa>"
  constexpr std::string_view kNs = "/ns/";
  if (id.substr(0, kNs.size()) != kNs) return {};
  id.remove_prefix(kNs.size());
  auto end = id.find('/');
  if (end == std::string_view::npos || end == 0) return {};
  std::string_view ns = id.substr(0, end);
  std::string_view rest = id.substr(end);  // "/sa/<sa>"
  constexpr std::string_view kSa = "/sa/";
  if (rest.substr(0, kSa.size()) != kSa) return {};
  rest.remove_prefix(kSa.size());
  if (rest.empty() || rest.find('/') != std::string_view::npos) return {};
  return ns;
}

std::string ruleLabel(const state::AuthorizationRule& r, std::size_t i) {
  return "authorization rule " + std::to_string(i) + (r.name.empty() ? std::string() : " (" + r.name + ")");
}

}  // namespace

const char* toString(Verdict v) { return v == Verdict::kAllow ? "allow" : "deny"; }

bool Authorization::Rule::matchesPort(std::uint16_t port) const {
  return ports.empty() || std::binary_search(ports.begin(), ports.end(), port);
}

bool Authorization::Rule::matchesSource(std::string_view identity, std::string_view ns) const {
  if (identities.empty() && fromNamespaces.empty()) return true;
  if (identity.empty()) return false;  // plaintext: only unconstrained sources match
  if (!identities.empty() && !containsSorted(identities, identity)) return false;
  if (!fromNamespaces.empty() && (ns.empty() || !containsSorted(fromNamespaces, ns))) return false;
  return true;
}

const std::vector<std::uint32_t>* Authorization::Index::forNamespace(std::string_view ns) const {
  auto it = std::lower_bound(byNamespace.begin(), byNamespace.end(), ns,
                             [](const auto& entry, std::string_view key) { return entry.first < key; });
  if (it == byNamespace.end() || it->first != ns) return nullptr;
  return &it->second;
}

Result<Authorization> Authorization::compile(const std::vector<state::AuthorizationRule>& rules) {
  if (rules.size() > UINT32_MAX) return Error{"too many authorization rules"};
  Authorization a;
  a.rules_.reserve(rules.size());
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto& in = rules[i];
    if (in.name.empty()) return Error{ruleLabel(in, i) + ": name is empty"};
    if (in.name == kDefaultRule || in.name == kNoMatchingAllowRule)
      return Error{ruleLabel(in, i) + ": name '" + in.name + "' is reserved"};
    if (!names.insert(in.name).second) return Error{ruleLabel(in, i) + ": duplicate rule name"};
    Rule r;
    r.name = in.name;
    r.action = in.action;
    for (const auto& id : in.fromIdentities) {
      auto parsed = identity::SpiffeId::parse(id);
      if (!parsed) return parsed.error().wrap(ruleLabel(in, i) + ": from identity '" + id + "'");
      r.identities.push_back(parsed->str());
    }
    for (const auto& ns : in.fromNamespaces) {
      if (ns.empty()) return Error{ruleLabel(in, i) + ": empty source namespace"};
      r.fromNamespaces.push_back(ns);
    }
    for (const auto& ns : in.toNamespaces)
      if (ns.empty()) return Error{ruleLabel(in, i) + ": empty destination namespace"};
    for (auto port : in.toPorts) {
      if (port == 0) return Error{ruleLabel(in, i) + ": destination port 0"};
      r.ports.push_back(port);
    }
    sortUnique(r.identities);
    sortUnique(r.fromNamespaces);
    sortUnique(r.ports);
    r.anyNamespace = in.toNamespaces.empty();

    auto idx = static_cast<std::uint32_t>(i);
    Index& index = in.action == state::RuleAction::kDeny ? a.deny_ : a.allow_;
    if (r.anyNamespace) {
      index.anyNamespace.push_back(idx);
    } else {
      std::vector<std::string> to = in.toNamespaces;
      sortUnique(to);
      for (auto& ns : to) {
        auto it = std::lower_bound(index.byNamespace.begin(), index.byNamespace.end(), ns,
                                   [](const auto& entry, const std::string& key) { return entry.first < key; });
        if (it == index.byNamespace.end() || it->first != ns) it = index.byNamespace.insert(it, {ns, {}});
        it->second.push_back(idx);  // ascending: rules are visited in order
      }
    }
    a.rules_.push_back(std::move(r));
  }
  return a;
}

const Authorization::Rule* Authorization::firstMatch(const Index& index, const Request& req, std::string_view srcNs,
                                                     bool* selected) const {
  // Walk the namespace's rules and the any-namespace rules merged, in rule order.
  static const std::vector<std::uint32_t> kNone;
  const auto* scoped = index.forNamespace(req.destinationNamespace);
  const auto& a = scoped ? *scoped : kNone;
  const auto& b = index.anyNamespace;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    std::uint32_t idx;
    if (j == b.size() || (i < a.size() && a[i] < b[j]))
      idx = a[i++];
    else
      idx = b[j++];
    const Rule& r = rules_[idx];
    if (!r.matchesPort(req.destinationPort)) continue;
    *selected = true;
    if (r.matchesSource(req.sourceIdentity, srcNs)) return &r;
  }
  return nullptr;
}

Authorization::Match Authorization::match(const Request& req) const {
  std::string_view srcNs = req.sourceNamespace;
  if (srcNs.empty()) srcNs = namespaceOfIdentity(req.sourceIdentity);
  bool selected = false;
  if (const Rule* deny = firstMatch(deny_, req, srcNs, &selected)) return {Verdict::kDeny, deny->name};
  selected = false;
  if (const Rule* allow = firstMatch(allow_, req, srcNs, &selected)) return {Verdict::kAllow, allow->name};
  if (selected) return {Verdict::kDeny, kNoMatchingAllowRule};
  return {Verdict::kAllow, kDefaultRule};
}

Decision Authorization::evaluate(const Request& req) const {
  Match m = match(req);
  return Decision{m.verdict, std::string(m.rule)};
}

}  // namespace nodemesh::policy
