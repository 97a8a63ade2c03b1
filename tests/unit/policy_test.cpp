#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/authorization.h"

namespace nodemesh::policy {
namespace {

using state::AuthorizationRule;
using state::RuleAction;

constexpr const char* kShopCheckout = "spiffe://cluster.local/ns/shop/sa/checkout";
constexpr const char* kShopCart = "spiffe://cluster.local/ns/shop/sa/cart";
constexpr const char* kLegacy = "spiffe://cluster.local/ns/legacy/sa/default";
constexpr const char* kOps = "spiffe://cluster.local/ns/ops/sa/admin";

AuthorizationRule rule(std::string name, RuleAction action, std::vector<std::string> ids, std::vector<std::string> fromNs,
                       std::vector<std::string> toNs, std::vector<std::uint16_t> ports) {
  AuthorizationRule r;
  r.name = std::move(name);
  r.action = action;
  r.fromIdentities = std::move(ids);
  r.fromNamespaces = std::move(fromNs);
  r.toNamespaces = std::move(toNs);
  r.toPorts = std::move(ports);
  return r;
}

Authorization compileOk(const std::vector<AuthorizationRule>& rules) {
  auto a = Authorization::compile(rules);
  EXPECT_TRUE(a) << a.error().message;
  return a ? std::move(a).value() : Authorization{};
}

struct Case {
  const char* what;
  Request request;
  Verdict verdict;
  const char* rule;
};

void expectCases(const Authorization& a, const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    Decision d = a.evaluate(c.request);
    EXPECT_EQ(d.verdict, c.verdict) << "rule " << d.rule;
    EXPECT_EQ(d.rule, c.rule);
    Authorization::Match m = a.match(c.request);
    EXPECT_EQ(m.verdict, c.verdict);
    EXPECT_EQ(m.rule, c.rule);
  }
}

TEST(PolicyAuthorization, EmptyPolicyAllowsEverythingByDefault) {
  expectCases(compileOk({}), {
                                 {"mtls", {kShopCheckout, "shop", "shop", 8080}, Verdict::kAllow, "default"},
                                 {"plaintext", {"", "", "shop", 80}, Verdict::kAllow, "default"},
                             });
  Authorization defaulted;
  EXPECT_TRUE(defaulted.empty());
  EXPECT_EQ(defaulted.evaluate({"", "", "x", 1}).rule, "default");
}

TEST(PolicyAuthorization, DenyRules) {
  auto a = compileOk({
      rule("deny-legacy", RuleAction::kDeny, {kLegacy}, {"legacy"}, {"shop"}, {8080}),
      rule("deny-ops-ns", RuleAction::kDeny, {}, {"ops"}, {}, {}),
      rule("deny-port-23", RuleAction::kDeny, {}, {}, {}, {23}),
  });
  expectCases(a, {
      {"identity+ns+dest+port all match", {kLegacy, "legacy", "shop", 8080}, Verdict::kDeny, "deny-legacy"},
      {"other port", {kLegacy, "legacy", "shop", 8081}, Verdict::kAllow, "default"},
      {"other destination namespace", {kLegacy, "legacy", "web", 8080}, Verdict::kAllow, "default"},
      {"identity matches, namespace does not (AND across fields)", {kLegacy, "other", "shop", 8080}, Verdict::kAllow,
       "default"},
      {"other identity", {kShopCart, "legacy", "shop", 8080}, Verdict::kAllow, "default"},
      {"namespace-only deny, any destination", {kOps, "ops", "anything", 1}, Verdict::kDeny, "deny-ops-ns"},
      {"namespace derived from the identity", {kOps, "", "anything", 1}, Verdict::kDeny, "deny-ops-ns"},
      {"plaintext does not match a from-constrained deny", {"", "ops", "anything", 1}, Verdict::kAllow, "default"},
      {"port-only deny matches plaintext", {"", "", "shop", 23}, Verdict::kDeny, "deny-port-23"},
      {"port-only deny matches mtls", {kShopCart, "shop", "shop", 23}, Verdict::kDeny, "deny-port-23"},
  });
}

TEST(PolicyAuthorization, AllowRulesSelectTheirDestination) {
  auto a = compileOk({
      rule("shop-from-shop", RuleAction::kAllow, {}, {"shop"}, {"shop"}, {}),
      rule("db-from-checkout", RuleAction::kAllow, {kShopCheckout}, {}, {"db"}, {5432}),
  });
  expectCases(a, {
      {"shop from shop", {kShopCart, "shop", "shop", 8080}, Verdict::kAllow, "shop-from-shop"},
      {"shop from ops: selected, no allow matched", {kOps, "ops", "shop", 8080}, Verdict::kDeny,
       "no-matching-allow"},
      {"shop plaintext: selected, plaintext never matches a from constraint", {"", "shop", "shop", 8080},
       Verdict::kDeny, "no-matching-allow"},
      {"db 5432 from checkout", {kShopCheckout, "shop", "db", 5432}, Verdict::kAllow, "db-from-checkout"},
      {"db 5432 from cart", {kShopCart, "shop", "db", 5432}, Verdict::kDeny, "no-matching-allow"},
      {"db other port: not selected", {kShopCart, "shop", "db", 9000}, Verdict::kAllow, "default"},
      {"unselected namespace", {kOps, "ops", "web", 80}, Verdict::kAllow, "default"},
      {"unselected namespace, plaintext", {"", "", "web", 80}, Verdict::kAllow, "default"},
  });
}

TEST(PolicyAuthorization, DenyWinsOverAllow) {
  auto a = compileOk({
      rule("allow-all-shop", RuleAction::kAllow, {}, {}, {"shop"}, {}),
      rule("deny-legacy", RuleAction::kDeny, {}, {"legacy"}, {}, {}),
  });
  expectCases(a, {
      {"legacy denied although an allow matches", {kLegacy, "legacy", "shop", 80}, Verdict::kDeny, "deny-legacy"},
      {"others allowed by the allow rule", {kShopCart, "shop", "shop", 80}, Verdict::kAllow, "allow-all-shop"},
      {"plaintext matches an unconstrained allow", {"", "", "shop", 80}, Verdict::kAllow, "allow-all-shop"},
  });
}

TEST(PolicyAuthorization, ReportsTheFirstMatchingRuleInRuleOrder) {
  // Namespace-scoped and any-namespace rules interleave; the first in file order wins.
  auto a = compileOk({
      rule("any-ns-80", RuleAction::kAllow, {}, {}, {}, {80}),
      rule("shop-any-port", RuleAction::kAllow, {}, {}, {"shop"}, {}),
      rule("deny-shop-9", RuleAction::kDeny, {}, {}, {"shop"}, {9}),
      rule("deny-any-9", RuleAction::kDeny, {}, {}, {}, {9}),
      rule("shop-again", RuleAction::kAllow, {}, {}, {"shop", "web"}, {443}),
  });
  expectCases(a, {
      {"port 80 in shop: any-ns rule is first", {"", "", "shop", 80}, Verdict::kAllow, "any-ns-80"},
      {"port 443 in shop: scoped rule before shop-again", {"", "", "shop", 443}, Verdict::kAllow, "shop-any-port"},
      {"port 443 in web", {"", "", "web", 443}, Verdict::kAllow, "shop-again"},
      {"port 9 in shop: scoped deny first", {"", "", "shop", 9}, Verdict::kDeny, "deny-shop-9"},
      {"port 9 elsewhere", {"", "", "web", 9}, Verdict::kDeny, "deny-any-9"},
      {"web other port: selected by any-ns-80? no, port differs; shop-again port differs", {"", "", "web", 22},
       Verdict::kAllow, "default"},
  });
}

TEST(PolicyAuthorization, IdentityAndNamespaceLists) {
  auto a = compileOk({
      rule("two-ids", RuleAction::kAllow, {kShopCheckout, kShopCart}, {}, {"pay"}, {443, 8443}),
      rule("ns-list", RuleAction::kAllow, {}, {"ops", "legacy"}, {"pay"}, {9090}),
  });
  expectCases(a, {
      {"first id", {kShopCheckout, "shop", "pay", 443}, Verdict::kAllow, "two-ids"},
      {"second id, second port", {kShopCart, "shop", "pay", 8443}, Verdict::kAllow, "two-ids"},
      {"id listed, port of the other rule", {kShopCart, "shop", "pay", 9090}, Verdict::kDeny, "no-matching-allow"},
      {"ns list second entry", {kLegacy, "legacy", "pay", 9090}, Verdict::kAllow, "ns-list"},
      {"ns list, explicit namespace wins over the identity's", {kShopCart, "ops", "pay", 9090}, Verdict::kAllow,
       "ns-list"},
      {"identity of a foreign shape has no namespace", {"spiffe://cluster.local/custom/path", "", "pay", 9090},
       Verdict::kDeny, "no-matching-allow"},
      {"identity comparison is exact", {"spiffe://cluster.local/ns/shop/sa/cart/", "shop", "pay", 443}, Verdict::kDeny,
       "no-matching-allow"},
  });
}

TEST(PolicyAuthorization, IdentityAndNamespaceMustBothMatchWhenBothGiven) {
  auto a = compileOk({rule("both", RuleAction::kAllow, {kShopCheckout}, {"shop"}, {"pay"}, {})});
  expectCases(a, {
      {"both", {kShopCheckout, "shop", "pay", 1}, Verdict::kAllow, "both"},
      {"namespace mismatch", {kShopCheckout, "other", "pay", 1}, Verdict::kDeny, "no-matching-allow"},
      {"identity mismatch", {kShopCart, "shop", "pay", 1}, Verdict::kDeny, "no-matching-allow"},
  });
}

TEST(PolicyAuthorization, EmptyRuleMatchesEverything) {
  expectCases(compileOk({rule("deny-all", RuleAction::kDeny, {}, {}, {}, {})}),
              {{"mtls", {kShopCart, "shop", "x", 1}, Verdict::kDeny, "deny-all"},
               {"plaintext", {"", "", "", 65535}, Verdict::kDeny, "deny-all"}});
  expectCases(compileOk({rule("allow-all", RuleAction::kAllow, {}, {}, {}, {})}),
              {{"plaintext", {"", "", "x", 1}, Verdict::kAllow, "allow-all"}});
  // An allow rule for any destination that only admits meshed shop: everything else is denied.
  expectCases(compileOk({rule("only-shop", RuleAction::kAllow, {}, {"shop"}, {}, {})}),
              {{"shop", {kShopCart, "shop", "x", 1}, Verdict::kAllow, "only-shop"},
               {"ops", {kOps, "ops", "x", 1}, Verdict::kDeny, "no-matching-allow"},
               {"plaintext", {"", "", "x", 1}, Verdict::kDeny, "no-matching-allow"}});
}

TEST(PolicyAuthorization, DuplicatesInsideListsAreHarmless) {
  auto a = compileOk({rule("dups", RuleAction::kAllow, {kShopCart, kShopCart}, {"shop", "shop"}, {"pay", "pay"},
                           {443, 443, 80})});
  expectCases(a, {{"matches", {kShopCart, "shop", "pay", 80}, Verdict::kAllow, "dups"},
                  {"port not listed", {kShopCart, "shop", "pay", 81}, Verdict::kAllow, "default"}});
  EXPECT_EQ(a.size(), 1u);
}

TEST(PolicyAuthorization, MatchViewOutlivesNothingButTheCompiledPolicy) {
  auto compiled = Authorization::compile({rule("r", RuleAction::kDeny, {}, {}, {}, {})});
  ASSERT_TRUE(compiled);
  Authorization moved = std::move(compiled).value();
  EXPECT_EQ(moved.match({"", "", "x", 1}).rule, "r");
}

struct BadRules {
  const char* what;
  std::vector<AuthorizationRule> rules;
  const char* expect;  // substring of the error
};

TEST(PolicyAuthorization, CompileRefusesInvalidRules) {
  const std::vector<BadRules> cases = {
      {"empty name", {rule("", RuleAction::kAllow, {}, {}, {}, {})}, "rule 0: name is empty"},
      {"duplicate",
       {rule("a", RuleAction::kAllow, {}, {}, {}, {}), rule("a", RuleAction::kDeny, {}, {}, {}, {})},
       "rule 1 (a): duplicate rule name"},
      {"reserved default", {rule("default", RuleAction::kAllow, {}, {}, {}, {})}, "'default' is reserved"},
      {"reserved no-match", {rule("no-matching-allow", RuleAction::kDeny, {}, {}, {}, {})}, "is reserved"},
      {"bad spiffe id", {rule("x", RuleAction::kAllow, {"http://cluster.local/ns/a/sa/b"}, {}, {}, {})},
       "rule 0 (x): from identity 'http://cluster.local/ns/a/sa/b'"},
      {"uppercase trust domain", {rule("x", RuleAction::kAllow, {"spiffe://Cluster/ns/a/sa/b"}, {}, {}, {})},
       "lowercase"},
      {"empty source ns", {rule("x", RuleAction::kAllow, {}, {""}, {}, {})}, "empty source namespace"},
      {"empty dest ns", {rule("x", RuleAction::kAllow, {}, {}, {""}, {})}, "empty destination namespace"},
      {"port 0", {rule("x", RuleAction::kDeny, {}, {}, {}, {0})}, "destination port 0"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto a = Authorization::compile(c.rules);
    ASSERT_FALSE(a);
    EXPECT_NE(a.error().message.find(c.expect), std::string::npos) << a.error().message;
  }
}

TEST(PolicyAuthorization, ManyRulesStayIndexedByNamespace) {
  std::vector<AuthorizationRule> rules;
  for (int i = 0; i < 1000; ++i)
    rules.push_back(rule("ns-" + std::to_string(i), RuleAction::kAllow, {}, {"client"}, {"ns" + std::to_string(i)},
                         {static_cast<std::uint16_t>(1000 + i)}));
  auto a = compileOk(rules);
  expectCases(a, {
      {"middle", {kShopCart, "client", "ns500", 1500}, Verdict::kAllow, "ns-500"},
      {"middle wrong source", {kShopCart, "shop", "ns500", 1500}, Verdict::kDeny, "no-matching-allow"},
      {"middle other port", {kShopCart, "shop", "ns500", 1501}, Verdict::kAllow, "default"},
      {"unknown ns", {kShopCart, "shop", "ns1000", 2000}, Verdict::kAllow, "default"},
  });
}

TEST(PolicyAuthorization, VerdictNames) {
  EXPECT_STREQ(toString(Verdict::kAllow), "allow");
  EXPECT_STREQ(toString(Verdict::kDeny), "deny");
}

}  // namespace
}  // namespace nodemesh::policy
