// L4 authorization (state::AuthorizationRule), compiled once per snapshot and
// evaluated per connection by the proxy that delivers to the destination:
//   1. any matching deny rule refuses;
//   2. else, when allow rules select the destination (their `to` matches the
//      destination namespace and port), one of those must also match the
//      source, else the connection is refused (rule kNoMatchingAllowRule);
//   3. else allowed (rule kDefaultRule): within the trust domain, which TLS
//      verification already enforced.
// A rule matches when every non-empty list of it matches (an empty list
// matches anything; within a list any entry may match). A request without a
// source identity (plaintext) matches only rules that constrain neither
// from.identities nor from.namespaces. The reported rule is the first
// matching one in rule order.
//
// evaluate()/match() are const, lock-free and allocation-free apart from
// Decision::rule (match() returns a view instead), so proxy worker threads
// may share one compiled Authorization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "state/snapshot.h"

namespace nodemesh::policy {

// Rule names of the implicit outcomes. Both are refused as rule names so a
// decision's rule always says which case it was.
inline constexpr std::string_view kDefaultRule = "default";
inline constexpr std::string_view kNoMatchingAllowRule = "no-matching-allow";

struct Request {
  std::string_view sourceIdentity;   // SPIFFE URI text, empty when unknown (plaintext)
  std::string_view sourceNamespace;  // the source workload's namespace; when empty and the identity
                                     // has the form spiffe://<td>/ns/<ns>/sa/<sa>, <ns> is used
  std::string_view destinationNamespace;
  std::uint16_t destinationPort = 0;
};

enum class Verdict : std::uint8_t { kAllow, kDeny };
const char* toString(Verdict v);

struct Decision {
  Verdict verdict;
  std::string rule;  // matching rule name, kDefaultRule or kNoMatchingAllowRule
};

class Authorization {
 public:
  // An empty policy: everything is allowed by kDefaultRule.
  Authorization() = default;

  // Checks the rules (non-empty unique names, not a reserved name, valid
  // SPIFFE IDs, non-empty namespaces, ports 1..65535); says which rule is wrong.
  static Result<Authorization> compile(const std::vector<state::AuthorizationRule>& rules);

  Decision evaluate(const Request& request) const;

  // Same as evaluate() without allocating: `rule` points into this object
  // (or at the static kDefaultRule/kNoMatchingAllowRule) and lives as long as it.
  struct Match {
    Verdict verdict;
    std::string_view rule;
  };
  Match match(const Request& request) const;

  std::size_t size() const { return rules_.size(); }
  bool empty() const { return rules_.empty(); }

 private:
  struct Rule {
    std::string name;
    state::RuleAction action = state::RuleAction::kAllow;
    std::vector<std::string> identities;      // sorted, unique
    std::vector<std::string> fromNamespaces;  // sorted, unique
    std::vector<std::uint16_t> ports;         // sorted, unique
    bool anyNamespace = true;                 // `to.namespaces` empty

    bool matchesPort(std::uint16_t port) const;
    bool matchesSource(std::string_view identity, std::string_view ns) const;
  };
  // Rule indices (ascending) of one action, by destination namespace.
  struct Index {
    std::vector<std::pair<std::string, std::vector<std::uint32_t>>> byNamespace;  // sorted by namespace
    std::vector<std::uint32_t> anyNamespace;
    const std::vector<std::uint32_t>* forNamespace(std::string_view ns) const;
  };
  // The first rule (in rule order) of `index` matching both destination and
  // source; `*selected` is set when any rule's `to` matched the destination.
  const Rule* firstMatch(const Index& index, const Request& r, std::string_view srcNs, bool* selected) const;

  std::vector<Rule> rules_;
  Index deny_;
  Index allow_;
};

}  // namespace nodemesh::policy
