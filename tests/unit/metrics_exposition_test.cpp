// The Prometheus text formatter and the agent's metric family list.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include "daemon/metrics.h"
#include "daemon/metrics_exposition.h"

namespace nodemesh::daemon::metrics {
namespace {

constexpr Family kTest[] = {
    {"test_requests_total", Type::kCounter, "Requests.\nSecond line with a \\ backslash and \"quotes\"."},
    {"test_temperature", Type::kGauge, "Temperature."},
    {"test_unused", Type::kGauge, "Declared, no samples."},
};

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(MetricsExposition, EscapesLabelValues) {
  EXPECT_EQ(escapeLabelValue("plain"), "plain");
  EXPECT_EQ(escapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(escapeLabelValue("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(escapeLabelValue("two\nlines"), "two\\nlines");
  EXPECT_EQ(escapeLabelValue("\\\"\n"), "\\\\\\\"\\n");
  EXPECT_EQ(escapeLabelValue("tab\tand ünïcode"), "tab\tand ünïcode");  // only the three are escaped
}

TEST(MetricsExposition, EscapesHelpButNotQuotes) {
  EXPECT_EQ(escapeHelp("a\\b\n\"c\""), "a\\\\b\\n\"c\"");
}

TEST(MetricsExposition, FormatsValues) {
  EXPECT_EQ(formatValue(std::uint64_t{0}), "0");
  EXPECT_EQ(formatValue(std::uint64_t{18446744073709551615ull}), "18446744073709551615");
  EXPECT_EQ(formatValue(12.5), "12.5");
  EXPECT_EQ(formatValue(3.0), "3");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(std::stod(formatValue(1e20)), 1e20);
}

TEST(MetricsExposition, HelpAndTypeOncePerFamilyInListOrderWithSamplesGrouped) {
  // Samples arrive interleaved; the output groups them under their family.
  const std::vector<Sample> samples = {
      {0, {{"path", "/a"}}, std::uint64_t{1}},
      {1, {}, 21.5},
      {0, {{"path", "/b\"x\""}, {"code", "200"}}, std::uint64_t{2}},
  };
  const std::string out = formatExposition(kTest, samples);
  EXPECT_EQ(out,
            "# HELP test_requests_total Requests.\\nSecond line with a \\\\ backslash and \"quotes\".\n"
            "# TYPE test_requests_total counter\n"
            "test_requests_total{path=\"/a\"} 1\n"
            "test_requests_total{path=\"/b\\\"x\\\"\",code=\"200\"} 2\n"
            "# HELP test_temperature Temperature.\n"
            "# TYPE test_temperature gauge\n"
            "test_temperature 21.5\n"
            "# HELP test_unused Declared, no samples.\n"
            "# TYPE test_unused gauge\n");
}

TEST(MetricsExposition, RefusesBadSamples) {
  EXPECT_THROW(formatExposition(kTest, std::vector<Sample>{{3, {}, std::uint64_t{1}}}), std::invalid_argument);
  EXPECT_THROW(formatExposition(kTest, std::vector<Sample>{{0, {{"bad-name", "v"}}, std::uint64_t{1}}}),
               std::invalid_argument);
  EXPECT_THROW(formatExposition(kTest, std::vector<Sample>{{0, {{"__reserved", "v"}}, std::uint64_t{1}}}),
               std::invalid_argument);
}

TEST(MetricsExposition, NameRules) {
  EXPECT_TRUE(validMetricName("nodemesh_x:y_1"));
  EXPECT_FALSE(validMetricName("1abc"));
  EXPECT_FALSE(validMetricName("a-b"));
  EXPECT_FALSE(validMetricName(""));
  EXPECT_TRUE(validLabelName("vip"));
  EXPECT_FALSE(validLabelName("a:b"));
  EXPECT_FALSE(validLabelName("__name__"));
}

TEST(AgentMetricFamilies, AreValidUniqueAndCountersEndInTotal) {
  std::set<std::string_view> names;
  for (const auto& f : kFamilies) {
    EXPECT_TRUE(validMetricName(f.name)) << f.name;
    EXPECT_TRUE(f.name.starts_with("nodemesh_")) << f.name;
    EXPECT_TRUE(names.insert(f.name).second) << "declared twice: " << f.name;
    EXPECT_EQ(f.type == Type::kCounter, f.name.ends_with("_total")) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
}

AgentMetrics example() {
  AgentMetrics m;
  m.version = "0.1.0";
  m.uptimeSeconds = 12.25;
  m.configVersion = 3;
  m.reloadFailures = 2;
  m.lastReloadSucceeded = false;
  m.services = 2;
  m.backends = 5;
  m.maps = {{"nm_services", 3u, 65536}, {"nm_sock_storage", std::nullopt, 0}};
  m.servicePorts = {{"demo/web", "127.96.0.10", 80, "tcp", 10, 0, 1},
                    {"demo/odd\"name\\", "fd00::10", 53, "udp", 0, 7, 0}};
  m.namespaces = {{"shop", 40, 3, 1000, 2000, 1, 2, 5}};
  m.proxyEvents = {{"uncaptured", 4}};
  return m;
}

TEST(AgentMetrics, RendersEveryFamilyOnceWithTheValues) {
  const std::string out = render(example());
  for (const auto& f : kFamilies) {
    EXPECT_EQ(count(out, "# HELP " + std::string(f.name) + " "), 1u) << f.name;
    EXPECT_EQ(count(out, "# TYPE " + std::string(f.name) + " "), 1u) << f.name;
  }
  EXPECT_NE(out.find("\nnodemesh_build_info{version=\"0.1.0\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_agent_uptime_seconds 12.25\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_config_version 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_config_reload_failures_total 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_config_last_reload_success 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_services 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_backends 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_bpf_map_entries{map=\"nm_services\"} 3\n"), std::string::npos) << out;
  // A map the kernel cannot count has a capacity sample but no entries sample.
  EXPECT_EQ(out.find("nodemesh_bpf_map_entries{map=\"nm_sock_storage\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_bpf_map_max_entries{map=\"nm_sock_storage\"} 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_service_connections_total{service=\"demo/web\",vip=\"127.96.0.10\",port=\"80\","
                     "protocol=\"tcp\"} 10\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_service_no_backend_total{service=\"demo/web\",vip=\"127.96.0.10\",port=\"80\","
                     "protocol=\"tcp\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_service_datagrams_total{service=\"demo/odd\\\"name\\\\\",vip=\"fd00::10\","
                     "port=\"53\",protocol=\"udp\"} 7\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_connections_total{namespace=\"shop\"} 40\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_active_connections{namespace=\"shop\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_bytes_total{namespace=\"shop\",direction=\"upstream\"} 1000\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_bytes_total{namespace=\"shop\",direction=\"downstream\"} 2000\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_handshake_failures_total{namespace=\"shop\"} 1\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_policy_denials_total{namespace=\"shop\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_namespace_tenancy_rejects_total{namespace=\"shop\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nnodemesh_proxy_events_total{kind=\"uncaptured\"} 4\n"), std::string::npos) << out;
  // Every line is a comment or "name[{labels}] value"; the body ends with a newline.
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
}

TEST(AgentMetrics, NoDatapathYetStillDeclaresEveryFamily) {
  AgentMetrics m;
  m.version = "0.1.0";
  const std::string out = render(m);
  EXPECT_EQ(count(out, "# TYPE "), std::size(kFamilies));
  EXPECT_EQ(out.find("nodemesh_service_connections_total{"), std::string::npos);
  EXPECT_NE(out.find("\nnodemesh_config_last_reload_success 1\n"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::daemon::metrics
