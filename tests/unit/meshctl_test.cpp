// meshctl's pure parts: text rendering of the admin API's JSON (including
// JSON from a different agent version), HTTP answer parsing, and the
// operator-facing connection errors.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "admin_client.h"
#include "commands.h"
#include "common/unique_fd.h"
#include "http_response.h"
#include "json_view.h"
#include "render.h"
#include "table.h"

namespace nodemesh::cli {
namespace {

using nlohmann::json;

// The examples from docs/ADMIN-API.md, verbatim.
const json kStatus = json::parse(R"({
  "agent": {"version": "0.1.0", "node": "demo-node", "pid": 1234, "uptimeSeconds": 12.5,
            "configSource": "/etc/nodemesh/node.yaml", "configVersion": 3,
            "lastReloadError": null},
  "kernel": {"release": "6.18.44", "cgroup2Mount": "/sys/fs/cgroup/unified", "bpffs": "/sys/fs/bpf",
             "features": [{"name": "btf", "available": true, "detail": "/sys/kernel/btf/vmlinux"}]},
  "programs": [{"hook": "connect4", "cgroup": "/nodemesh", "programId": 42, "linkId": 7,
                "pin": "/sys/fs/bpf/nodemesh/links/connect4"}],
  "maps": [{"name": "nm_services", "entries": 3, "maxEntries": 65536}],
  "counts": {"services": 2, "servicePorts": 3, "backends": 5, "workloads": 2},
  "services": [{"name": "demo/web", "vip": "127.96.0.10", "port": 80, "protocol": "tcp",
                "lb": "random", "backends": 3, "readyBackends": 3,
                "connections": 10, "datagrams": 0, "noBackend": 0}],
  "mesh": {"proxy": "running",
           "captureListeners": ["127.0.0.1:15001", "[::1]:15001", "10.77.0.1:15001"],
           "hboneListener": "10.77.0.1:15008", "workers": 2, "missingRingFeatures": [],
           "identity": {"trustDomain": "cluster.local", "ca": "/etc/nodemesh/ca.pem",
                        "node": "spiffe://cluster.local/ns/nodemesh-system/sa/nodemesh-agent",
                        "certificates": 3, "nextRotation": "2026-11-27T11:30:00Z"},
           "counters": {"uncaptured": 0, "unknown_workload": 0, "no_route": 0, "no_endpoint": 0,
                        "no_certificate": 0, "policy_denials": 2, "tenancy_rejects": 0, "not_local": 0,
                        "tunnels_opened": 1, "tunnels_accepted": 0, "tunnels_closed": 0,
                        "tunnel_connect_failures": 0, "handshake_timeouts": 0, "tunnel_streams": 40,
                        "tunnel_rejected": 0, "tunnel_resets": 0, "tunnel_bytes_in": 3145728,
                        "tunnel_bytes_out": 52480},
           "namespaces": [{"namespace": "shop", "connections_total": 120, "connections_active": 4,
                           "bytes_in": 52480, "bytes_out": 3145728, "handshake_failures": 0,
                           "policy_denials": 2, "tenancy_rejects": 0, "buffer_pauses": 1,
                           "buffered_bytes": 0}],
           "warnings": []},
  "socketRedirect": {"enabled": true, "sockets": 4, "messagesRedirected": 1200,
                     "bytesRedirected": 1572864, "messagesOverTcp": 3}
})");

// An agent from before the node proxy: neither "mesh" nor "socketRedirect".
json oldAgentStatus() {
  json status = kStatus;
  status.erase("mesh");
  status.erase("socketRedirect");
  return status;
}

const json kServices = json::parse(R"(
{"services": [{"name": "demo/web", "mode": "l4", "lb": "random", "vips": ["127.96.0.10"],
               "ports": [{"name": "http", "port": 80, "protocol": "tcp", "targetPort": 8080}],
               "endpoints": [{"address": "127.0.0.1", "port": 18081, "weight": 1,
                              "ready": true, "node": "demo-node"}]}]}
)");

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool hasLine(const std::string& text, const std::string& line) {
  const auto all = lines(text);
  return std::find(all.begin(), all.end(), line) != all.end();
}

// A header-block line: values start two columns after the longest label,
// "Kernel release:" unless a reload error is shown.
std::string kv(const std::string& label, const std::string& value, std::size_t valueColumn = 17) {
  std::string line = label + ":";
  line.append(valueColumn - line.size(), ' ');
  return line + value;
}

// The line after the one equal to `title`, plus `offset`.
std::string lineAfter(const std::string& text, const std::string& title, std::size_t offset = 1) {
  const auto all = lines(text);
  const auto it = std::find(all.begin(), all.end(), title);
  if (it == all.end() || static_cast<std::size_t>(all.end() - it) <= offset) return "<missing>";
  return *(it + static_cast<std::ptrdiff_t>(offset));
}

TEST(RenderNodeStatusTest, HeaderBlockFromTheDocumentedExample) {
  const std::string text = renderNodeStatus(kStatus);
  EXPECT_TRUE(hasLine(text, kv("Agent version", "0.1.0"))) << text;
  EXPECT_TRUE(hasLine(text, kv("Node", "demo-node"))) << text;
  EXPECT_TRUE(hasLine(text, kv("PID", "1234"))) << text;
  EXPECT_TRUE(hasLine(text, kv("Uptime", "12s"))) << text;
  EXPECT_TRUE(hasLine(text, kv("Config", "/etc/nodemesh/node.yaml (version 3)"))) << text;
  EXPECT_TRUE(hasLine(text, kv("Kernel release", "6.18.44"))) << text;
  EXPECT_TRUE(hasLine(text, kv("cgroup2 mount", "/sys/fs/cgroup/unified"))) << text;
  EXPECT_TRUE(hasLine(text, kv("bpffs", "/sys/fs/bpf"))) << text;
  EXPECT_EQ(text.find("Last reload error"), std::string::npos) << "null means no error";
}

TEST(RenderNodeStatusTest, TablesFromTheDocumentedExample) {
  const std::string text = renderNodeStatus(kStatus);
  EXPECT_EQ(lineAfter(text, "Kernel features:"), "  btf  yes  /sys/kernel/btf/vmlinux");
  EXPECT_EQ(lineAfter(text, "Attached programs:"), "  HOOK      CGROUP     PROG-ID  LINK-ID  PIN");
  EXPECT_EQ(lineAfter(text, "Attached programs:", 2),
            "  connect4  /nodemesh  42       7        /sys/fs/bpf/nodemesh/links/connect4");
  EXPECT_EQ(lineAfter(text, "Maps:"), "  NAME         ENTRIES  MAX    FILL%");
  EXPECT_EQ(lineAfter(text, "Maps:", 2), "  nm_services  3        65536  0.0");
  EXPECT_TRUE(hasLine(text, "Counts: services=2 servicePorts=3 backends=5 workloads=2")) << text;
  EXPECT_EQ(lineAfter(text, "Services:"),
            "  SERVICE   VIP          PORT  PROTO  LB      BACKENDS  CONNECTIONS  DATAGRAMS  NO-BACKEND");
  EXPECT_EQ(lineAfter(text, "Services:", 2),
            "  demo/web  127.96.0.10  80    tcp    random  3/3       10           0          0");
}

TEST(RenderNodeStatusTest, NoTrailingWhitespace) {
  for (const auto& line : lines(renderNodeStatus(kStatus))) {
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "'" << line << "'";
  }
}

TEST(RenderNodeStatusTest, ShowsAMultiLineReloadErrorIndented) {
  json status = kStatus;
  status["agent"]["lastReloadError"] = "services[0].ports: duplicate port 80\nsecond line";
  const std::string text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, "Last reload error:  services[0].ports: duplicate port 80")) << text;
  EXPECT_TRUE(hasLine(text, "                    second line")) << text;
}

TEST(RenderNodeStatusTest, FillPercentAndExtraCounts) {
  json status = kStatus;
  status["maps"] = json::array({{{"name", "a"}, {"entries", 512}, {"maxEntries", 1024}},
                                {{"name", "b"}, {"entries", 1}, {"maxEntries", 0}}});
  status["counts"]["identities"] = 4;
  const std::string text = renderNodeStatus(status);
  EXPECT_EQ(lineAfter(text, "Maps:", 1), "  NAME  ENTRIES  MAX   FILL%");
  EXPECT_EQ(lineAfter(text, "Maps:", 2), "  a     512      1024  50.0");
  EXPECT_EQ(lineAfter(text, "Maps:", 3), "  b     1        0     -");
  EXPECT_TRUE(hasLine(text, "Counts: services=2 servicePorts=3 backends=5 workloads=2 identities=4")) << text;
}

TEST(RenderNodeStatusTest, EmptyListsSayNone) {
  json status = kStatus;
  status["programs"] = json::array();
  status.erase("maps");
  const std::string text = renderNodeStatus(status);
  EXPECT_EQ(lineAfter(text, "Attached programs:"), "  (none)");
  EXPECT_EQ(lineAfter(text, "Maps:"), "  (none)");
}

TEST(RenderNodeStatusTest, ControlCharactersAreNeutralized) {
  json status = kStatus;
  status["services"][0]["name"] = "evil\x1b[2Jname";
  const std::string text = renderNodeStatus(status);
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("evil?[2Jname"), std::string::npos);
}

// A "Node proxy:" line: two-space indent, values after the longest label
// ("Capture listeners:").
std::string proxyKv(const std::string& label, const std::string& value) { return "  " + kv(label, value, 20); }

TEST(RenderNodeStatusTest, NodeProxyFromTheDocumentedExample) {
  const std::string text = renderNodeStatus(kStatus);
  EXPECT_TRUE(hasLine(text, "Node proxy:")) << text;
  EXPECT_EQ(lineAfter(text, "Node proxy:"), proxyKv("State", "running"));
  EXPECT_TRUE(hasLine(text, proxyKv("Capture listeners", "127.0.0.1:15001, [::1]:15001, 10.77.0.1:15001"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("HBONE listener", "10.77.0.1:15008"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Workers", "2"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("io_uring", "all features present"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Trust domain", "cluster.local"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("CA", "/etc/nodemesh/ca.pem"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Node identity", "spiffe://cluster.local/ns/nodemesh-system/sa/nodemesh-agent")))
      << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Certificates", "3"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Next rotation", "2026-11-27T11:30:00Z"))) << text;
  EXPECT_EQ(text.find("WARNING"), std::string::npos) << "a CA from files and no table warnings: " << text;
}

TEST(RenderNodeStatusTest, OnlyProxyCountersThatMovedAreShown) {
  const std::string text = renderNodeStatus(kStatus);
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 1), "  policy_denials    2");
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 2), "  tunnel_bytes_in   3.0MiB");
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 3), "  tunnel_bytes_out  51.2KiB");
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 4), "  tunnel_streams    40");
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 5), "  tunnels_opened    1");
  EXPECT_EQ(lineAfter(text, "Proxy counters:", 6), "");
  EXPECT_EQ(text.find("uncaptured"), std::string::npos) << text;

  json quiet = kStatus;
  for (auto& [name, value] : quiet["mesh"]["counters"].items()) value = 0;
  EXPECT_TRUE(hasLine(renderNodeStatus(quiet), "Proxy counters: all zero"));

  json uncaptured = quiet;
  uncaptured["mesh"]["counters"]["uncaptured"] = 7;
  uncaptured["mesh"]["counters"]["a_newer_counter"] = 1;  // shown too, not hidden
  const std::string t = renderNodeStatus(uncaptured);
  EXPECT_EQ(lineAfter(t, "Proxy counters:", 1), "  a_newer_counter  1");
  EXPECT_EQ(lineAfter(t, "Proxy counters:", 2), "  uncaptured       7");
}

TEST(RenderNodeStatusTest, PerNamespaceTable) {
  json status = kStatus;
  status["mesh"]["namespaces"].push_back({{"namespace", "legacy"}, {"connections_total", 5}, {"connections_active", 0},
                                          {"bytes_in", 512}, {"bytes_out", 0}, {"handshake_failures", 3},
                                          {"policy_denials", 5}, {"tenancy_rejects", 9}, {"buffer_pauses", 0},
                                          {"buffered_bytes", 16777216}});
  const std::string text = renderNodeStatus(status);
  EXPECT_EQ(lineAfter(text, "Namespaces:", 1),
            "  NAMESPACE  ACTIVE  TOTAL  BYTES-IN  BYTES-OUT  HANDSHAKE-FAILURES  DENIALS  TENANCY-REJECTS  BUFFERED  PAUSES");
  EXPECT_EQ(lineAfter(text, "Namespaces:", 2),
            "  shop       4       120    51.2KiB   3.0MiB     0                   2        0                0B        1");
  EXPECT_EQ(lineAfter(text, "Namespaces:", 3),
            "  legacy     0       5      512B      0B         3                   5        9                16.0MiB   0");

  status["mesh"]["namespaces"] = json::array();
  EXPECT_EQ(lineAfter(renderNodeStatus(status), "Namespaces:"), "  (none)");
}

TEST(RenderNodeStatusTest, DevelopmentCaStandsOut) {
  json status = kStatus;
  status["mesh"]["identity"]["ca"] = "development CA (generated in memory)";
  const std::string text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, proxyKv("CA", "development CA (generated in memory)"))) << text;
  const auto all = lines(text);
  const auto warning = std::find_if(all.begin(), all.end(), [](const std::string& l) {
    return l.rfind("  WARNING: development CA", 0) == 0;
  });
  ASSERT_NE(warning, all.end()) << text;
  EXPECT_NE(warning->find("mesh.ca.certFile"), std::string::npos) << *warning;
  // Inside the "Node proxy" block, right after its key-value lines.
  EXPECT_EQ(*(warning - 1), proxyKv("Next rotation", "2026-11-27T11:30:00Z"));
}

TEST(RenderNodeStatusTest, MissingRingFeaturesAreNamed) {
  json status = kStatus;
  status["mesh"]["missingRingFeatures"] = {"multishot recv byte cap", "IORING_SETUP_DEFER_TASKRUN"};
  EXPECT_TRUE(hasLine(renderNodeStatus(status),
                      proxyKv("io_uring", "fallbacks in use: multishot recv byte cap, IORING_SETUP_DEFER_TASKRUN")));
  status["mesh"].erase("missingRingFeatures");
  EXPECT_TRUE(hasLine(renderNodeStatus(status), proxyKv("io_uring", "-"))) << "unknown is not 'all present'";
}

TEST(RenderNodeStatusTest, NoNodeAddressAndTableWarnings) {
  json status = kStatus;
  status["mesh"]["hboneListener"] = nullptr;
  status["mesh"]["captureListeners"] = {"127.0.0.1:15001"};
  status["mesh"]["warnings"] = {"workload /nm/a: cgroup not found (is the pod running?); its outbound "
                                "connections cannot be attributed"};
  const std::string text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, proxyKv("HBONE listener", "(none: no node.address)"))) << text;
  EXPECT_TRUE(hasLine(text, proxyKv("Capture listeners", "127.0.0.1:15001"))) << text;
  EXPECT_TRUE(hasLine(text, "  WARNING: workload /nm/a: cgroup not found (is the pod running?); its outbound "
                            "connections cannot be attributed"))
      << text;
}

TEST(RenderNodeStatusTest, ProxyOff) {
  json status = kStatus;
  status["mesh"] = {{"proxy", "off"}};
  status["socketRedirect"] = {{"enabled", false}};
  const std::string text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, "Node proxy: off")) << text;
  EXPECT_TRUE(hasLine(text, "Socket redirect: off")) << text;
  EXPECT_EQ(text.find("Proxy counters"), std::string::npos) << text;
  EXPECT_EQ(text.find("Namespaces:"), std::string::npos) << text;
  EXPECT_EQ(text.find("WARNING"), std::string::npos) << text;
}

TEST(RenderNodeStatusTest, SocketRedirectLine) {
  EXPECT_TRUE(hasLine(renderNodeStatus(kStatus),
                      "Socket redirect: on, 4 sockets; 1200 messages (1.5MiB) redirected, 3 over TCP"));
  json status = kStatus;
  status["socketRedirect"]["sockets"] = nullptr;  // the kernel cannot count the sockhash
  EXPECT_TRUE(hasLine(renderNodeStatus(status), "Socket redirect: on; 1200 messages (1.5MiB) redirected, 3 over TCP"));
  status["socketRedirect"] = {{"enabled", false}, {"sockets", 0}};
  EXPECT_TRUE(hasLine(renderNodeStatus(status), "Socket redirect: off, 0 sockets"));
}

TEST(RenderNodeStatusTest, OldAgentWithoutMeshSections) {
  const std::string text = renderNodeStatus(oldAgentStatus());
  EXPECT_EQ(text.find("Node proxy"), std::string::npos) << text;
  EXPECT_EQ(text.find("Socket redirect"), std::string::npos) << text;
  EXPECT_EQ(text.find("Namespaces:"), std::string::npos) << text;
  // The rest is as before: the services table ends the output.
  EXPECT_EQ(lines(text).back(),
            "  demo/web  127.96.0.10  80    tcp    random  3/3       10           0          0");
}

TEST(RenderNodeStatusTest, MeshSectionsOfTheWrongShape) {
  json status = kStatus;
  status["mesh"] = {{"proxy", "running"}};  // a running proxy that says nothing else
  std::string text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, proxyKv("Workers", "-"))) << text;
  EXPECT_TRUE(hasLine(text, "Proxy counters: -")) << text;
  EXPECT_EQ(lineAfter(text, "Namespaces:"), "  (none)");
  status["mesh"] = "running";
  status["socketRedirect"] = json::array();
  text = renderNodeStatus(status);
  EXPECT_TRUE(hasLine(text, proxyKv("State", "-"))) << text;
  EXPECT_TRUE(hasLine(text, "Socket redirect: -")) << text;
}

TEST(FormatBytesTest, Examples) {
  EXPECT_EQ(formatBytes(0), "0B");
  EXPECT_EQ(formatBytes(1023), "1023B");
  EXPECT_EQ(formatBytes(1024), "1.0KiB");
  EXPECT_EQ(formatBytes(1536), "1.5KiB");
  EXPECT_EQ(formatBytes(12ull << 20), "12.0MiB");
  EXPECT_EQ(formatBytes(5ull << 30), "5.0GiB");
  EXPECT_EQ(formatBytes(18446744073709551615ull), "16.0EiB");
}

TEST(RenderServicesTest, DocumentedExample) {
  const std::string text = renderServices(kServices);
  const auto all = lines(text);
  ASSERT_EQ(all.size(), 4u) << text;
  EXPECT_EQ(all[0], "demo/web  l4  random  vips=127.96.0.10");
  EXPECT_EQ(all[1], "  ports: http=80/tcp->8080");
  EXPECT_EQ(all[2], "  ADDRESS    PORT   WEIGHT  READY  NODE");
  EXPECT_EQ(all[3], "  127.0.0.1  18081  1       yes    demo-node");
}

TEST(RenderServicesTest, OmittedEndpointPortMeansTargetPortAndServicesAreSeparated) {
  json services = kServices;
  services["services"][0]["endpoints"][0].erase("port");
  services["services"][0]["endpoints"][0]["ready"] = false;
  services["services"][0]["vips"].push_back("fd00::10");
  json second = {{"name", "demo/dns"}, {"mode", "l4"}, {"lb", "maglev"}, {"vips", {"127.96.0.53"}}};
  services["services"].push_back(second);
  const auto all = lines(renderServices(services));
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all[0], "demo/web  l4  random  vips=127.96.0.10,fd00::10");
  EXPECT_EQ(all[3], "  127.0.0.1  (target)  1       no     demo-node");
  EXPECT_EQ(all[4], "");
  EXPECT_EQ(all[5], "demo/dns  l4  maglev  vips=127.96.0.53");
  EXPECT_EQ(all[6], "  ports: -");
  EXPECT_EQ(all[7], "  (no endpoints)");
}

TEST(RenderServicesTest, NoServices) {
  EXPECT_EQ(renderServices(json::parse(R"({"services": []})")), "No services.\n");
  EXPECT_EQ(renderServices(json::object()), "No services.\n");
}

// Every shape an agent of another version (or a broken one) could send.
TEST(RenderRobustnessTest, GarbageTopLevelShapes) {
  const json shapes[] = {nullptr, 42, -1.5, "status", true, json::array(), json::array({1, 2}), json::object(),
                         json::parse(R"({"agent": 5, "kernel": [], "programs": {}, "maps": [1, "x", null],
                                         "counts": "x", "services": [{"name": {"a": 1}, "port": [1]}]})")};
  for (const auto& shape : shapes) {
    std::string status, services;
    EXPECT_NO_THROW(status = renderNodeStatus(shape)) << shape.dump();
    EXPECT_NO_THROW(services = renderServices(shape)) << shape.dump();
    EXPECT_FALSE(status.empty());
    EXPECT_FALSE(services.empty());
  }
  const std::string text = renderNodeStatus(json::object());
  EXPECT_TRUE(hasLine(text, kv("Agent version", "-"))) << text;
  EXPECT_TRUE(hasLine(text, kv("Uptime", "-"))) << text;
  EXPECT_TRUE(hasLine(text, "Counts: services=- servicePorts=- backends=- workloads=-")) << text;
}

// Replace every value in the documented examples, one at a time, with every
// JSON type, and also remove it: rendering must never throw.
TEST(RenderRobustnessTest, EveryFieldWithEveryWrongType) {
  const json replacements[] = {nullptr, "str", "", 1.5, -7, std::numeric_limits<double>::quiet_NaN(),
                               18446744073709551615ull, true, json::array(), json::object(),
                               json::array({nullptr}), std::string("bad\xff utf8")};
  int variants = 0;
  for (const json* doc : {&kStatus, &kServices}) {
    const json flat = doc->flatten();
    for (const auto& [pointer, unused] : flat.items()) {
      (void)unused;
      std::vector<json::json_pointer> targets{json::json_pointer(pointer)};
      // Also the containers above the leaf.
      while (!targets.back().empty()) targets.push_back(targets.back().parent_pointer());
      targets.pop_back();
      for (const auto& target : targets) {
        for (const auto& replacement : replacements) {
          json copy = *doc;
          copy[target] = replacement;
          EXPECT_NO_THROW((void)renderNodeStatus(copy)) << target.to_string();
          EXPECT_NO_THROW((void)renderServices(copy)) << target.to_string();
          ++variants;
        }
        json copy = *doc;
        json& parent = copy[target.parent_pointer()];
        if (parent.is_object()) {
          parent.erase(target.back());
        } else {
          parent.erase(std::stoul(target.back()));
        }
        EXPECT_NO_THROW((void)renderNodeStatus(copy));
        EXPECT_NO_THROW((void)renderServices(copy));
      }
    }
  }
  EXPECT_GT(variants, 100);
}

TEST(FormatUptimeTest, Examples) {
  EXPECT_EQ(formatUptime(0), "0s");
  EXPECT_EQ(formatUptime(12.5), "12s");
  EXPECT_EQ(formatUptime(59.999), "59s");
  EXPECT_EQ(formatUptime(60), "1m00s");
  EXPECT_EQ(formatUptime(3723), "1h02m03s");
  EXPECT_EQ(formatUptime(36000), "10h00m00s");
  EXPECT_EQ(formatUptime(86400 + 3661), "1d01h01m01s");
  EXPECT_EQ(formatUptime(-1), "-");
  EXPECT_EQ(formatUptime(std::nan("")), "-");
  EXPECT_EQ(formatUptime(std::numeric_limits<double>::infinity()), "-");
  EXPECT_EQ(formatUptime(1e300), "-");
}

TEST(TableTest, AlignsColumnsByCodePointsWithoutTrailingSpaces) {
  Table table;
  table.addRow({"NAME", "X"});
  table.addRow({"caf\xc3\xa9-long", "1"});
  table.addRow({"a", ""});
  EXPECT_EQ(table.render("> "), "> NAME       X\n> caf\xc3\xa9-long  1\n> a\n");
}

TEST(JsonViewTest, LenientScalars) {
  const json j = {{"s", "x"}, {"i", -3}, {"u", 7u}, {"f", 2.0}, {"g", 0.25}, {"b", false}, {"n", nullptr},
                  {"a", json::array()}, {"e", ""}};
  EXPECT_EQ(textField(j, "s"), "x");
  EXPECT_EQ(textField(j, "i"), "-3");
  EXPECT_EQ(textField(j, "u"), "7");
  EXPECT_EQ(textField(j, "f"), "2");
  EXPECT_EQ(textField(j, "g"), "0.25");
  EXPECT_EQ(textField(j, "b"), "false");
  EXPECT_EQ(textField(j, "n"), "-");
  EXPECT_EQ(textField(j, "a"), "-");
  EXPECT_EQ(textField(j, "e"), "-");
  EXPECT_EQ(textField(j, "missing"), "-");
  EXPECT_EQ(textField(json(5), "s"), "-");
  EXPECT_EQ(yesNoField(j, "b"), "no");
  EXPECT_EQ(yesNoField(j, "s"), "-");
  EXPECT_EQ(numberField(j, "s"), std::nullopt);
  EXPECT_EQ(numberField(j, "g"), 0.25);
}

TEST(HttpResponseTest, ParsesStatusHeadersAndBody) {
  auto r = parseHttpResponse("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}junk");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{}");

  auto noLength = parseHttpResponse("HTTP/1.1 404 Not Found\n\n{\"error\":\"x\"}");
  ASSERT_TRUE(noLength.ok());
  EXPECT_EQ(noLength->status, 404);
  EXPECT_EQ(noLength->body, "{\"error\":\"x\"}");
}

TEST(HttpResponseTest, RejectsBrokenAnswers) {
  for (const char* raw : {"", "HTTP/1.0 200 OK\r\n", "HTTP/1.0 2x0 OK\r\n\r\n", "SSH-2.0-OpenSSH\r\n\r\n",
                          "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n{}", "HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n",
                          "HTTP/1.0 999 Weird\r\n\r\n", "HTTP/1.0 2000\r\n\r\n"}) {
    auto r = parseHttpResponse(raw);
    EXPECT_FALSE(r.ok()) << raw;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("malformed answer"), std::string::npos);
    }
  }
}

TEST(HttpResponseTest, DescribesErrors) {
  EXPECT_EQ(describeHttpError({404, R"({"error": "unknown path /x"})"}), "unknown path /x (HTTP 404)");
  EXPECT_EQ(describeHttpError({500, "not json"}), "the agent answered HTTP 500");
  EXPECT_EQ(describeHttpError({500, R"({"error": 5})"}), "the agent answered HTTP 500");
}

TEST(AdminClientTest, MissingSocketSaysIsTheAgentRunning) {
  const std::string path = "/nonexistent-nodemesh-test/admin.sock";
  auto r = fetch(path, "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_NE(r.error().message.find("cannot reach the nodemesh agent at " + path), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos);
  EXPECT_NE(r.error().message.find("Is the agent running?"), std::string::npos);
  EXPECT_NE(r.error().message.find("nodemesh-agent --config FILE"), std::string::npos);
}

TEST(AdminClientTest, StaleSocketIsConnectionRefused) {
  char tmpl[] = "/tmp/nm-meshctl-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/admin.sock";
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  }
  auto r = fetch(path, "/v1/status");
  std::filesystem::remove_all(tmpl);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ECONNREFUSED);
  EXPECT_NE(r.error().message.find("Is the agent running?"), std::string::npos) << r.error().message;
}

TEST(AdminClientTest, PermissionDeniedSaysRootOnly) {
  const std::string msg = connectErrorMessage("/run/nodemesh/admin.sock", EACCES);
  EXPECT_NE(msg.find("root-only"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sudo"), std::string::npos) << msg;
}

TEST(AdminClientTest, OverlongPathIsAnErrorNotAnOverflow) {
  auto r = fetch("/tmp/" + std::string(300, 'x'), "/v1/status");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("too long"), std::string::npos);
}

TEST(RunQueryTest, UnreachableAgentPrintsExactlyOneLineAndExits1) {
  std::ostringstream out, err;
  const int rc = runQuery({"/nonexistent-nodemesh-test/admin.sock", kDefaultTimeout}, "/v1/status",
                          OutputFormat::kText, renderNodeStatus, out, err);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out.str(), "");
  const std::string e = err.str();
  EXPECT_EQ(e.rfind("meshctl: cannot reach the nodemesh agent at /nonexistent-nodemesh-test/admin.sock", 0), 0u) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_NE(e.find("Is the agent running?"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::cli
