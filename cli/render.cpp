#include "render.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "json_view.h"
#include "table.h"

namespace nodemesh::cli {
namespace {

using nlohmann::json;

constexpr std::string_view kIndent = "  ";

std::string twoDigits(long long v) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%02lld", v);
  return buf;
}

// "Label:" columns aligned; a multi-line value continues under the value.
std::string keyValues(const std::vector<std::pair<std::string, std::string>>& rows, std::string_view indent = "") {
  std::size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size() + 1);
  std::string out;
  for (const auto& [key, value] : rows) {
    std::string label = key + ":";
    label.append(width - label.size() + 2, ' ');
    std::string_view rest = value;
    bool first = true;
    do {
      const auto nl = rest.find('\n');
      out += indent;
      out += first ? label : std::string(label.size(), ' ');
      out += sanitize(rest.substr(0, nl));
      out += '\n';
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
      first = false;
    } while (!rest.empty());
  }
  return out;
}

std::string section(std::string_view title, const Table& table) {
  std::string out = "\n" + std::string(title) + ":\n";
  out += table.empty() ? std::string(kIndent) + "(none)\n" : table.render(kIndent);
  return out;
}

std::string fillPercent(const json& map) {
  const auto entries = numberField(map, "entries");
  const auto max = numberField(map, "maxEntries");
  if (!entries || !max || *max <= 0) return std::string(kMissing);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", *entries / *max * 100.0);
  return buf;
}

std::string configLine(const json& agent) {
  std::string source = textField(agent, "configSource");
  const std::string version = textField(agent, "configVersion");
  if (version != kMissing) source += " (version " + version + ")";
  return source;
}

std::string headerBlock(const json& status) {
  const json& agent = objectField(status, "agent");
  const json& kernel = objectField(status, "kernel");
  const auto uptime = numberField(agent, "uptimeSeconds");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"Agent version", textField(agent, "version")},
      {"Node", textField(agent, "node")},
      {"PID", textField(agent, "pid")},
      {"Uptime", uptime ? formatUptime(*uptime) : std::string(kMissing)},
      {"Config", configLine(agent)},
  };
  // Only shown when there is one: it means the node still runs an older config.
  if (const auto* err = field(agent, "lastReloadError"); err && err->is_string() && !err->get_ref<const std::string&>().empty()) {
    rows.emplace_back("Last reload error", err->get<std::string>());
  }
  rows.emplace_back("Kernel release", textField(kernel, "release"));
  rows.emplace_back("cgroup2 mount", textField(kernel, "cgroup2Mount"));
  rows.emplace_back("bpffs", textField(kernel, "bpffs"));
  return keyValues(rows);
}

std::string featuresSection(const json& status) {
  Table table;
  for (const auto& f : arrayField(objectField(status, "kernel"), "features")) {
    table.addRow({textField(f, "name"), yesNoField(f, "available"), textField(f, "detail")});
  }
  return section("Kernel features", table);
}

std::string programsSection(const json& status) {
  Table table;
  for (const auto& p : arrayField(status, "programs")) {
    if (table.empty()) table.addRow({"HOOK", "CGROUP", "PROG-ID", "LINK-ID", "PIN"});
    table.addRow({textField(p, "hook"), textField(p, "cgroup"), textField(p, "programId"), textField(p, "linkId"),
                  textField(p, "pin")});
  }
  return section("Attached programs", table);
}

std::string mapsSection(const json& status) {
  Table table;
  for (const auto& m : arrayField(status, "maps")) {
    if (table.empty()) table.addRow({"NAME", "ENTRIES", "MAX", "FILL%"});
    table.addRow({textField(m, "name"), textField(m, "entries"), textField(m, "maxEntries"), fillPercent(m)});
  }
  return section("Maps", table);
}

std::string countsLine(const json& status) {
  static constexpr std::string_view kKnown[] = {"services", "servicePorts", "backends", "workloads"};
  const json& counts = objectField(status, "counts");
  std::string line = "\nCounts:";
  for (auto key : kKnown) line += " " + std::string(key) + "=" + textField(counts, key);
  // A newer agent may count more things; show them rather than hide them.
  for (const auto& [key, value] : counts.items()) {
    bool known = false;
    for (auto k : kKnown) known = known || key == k;
    if (!known) line += " " + sanitize(key) + "=" + text(&value);
  }
  return line + "\n";
}

std::string backendsCell(const json& s) {
  return textField(s, "readyBackends") + "/" + textField(s, "backends");
}

std::string servicesSection(const json& status) {
  Table table;
  for (const auto& s : arrayField(status, "services")) {
    if (table.empty()) {
      table.addRow({"SERVICE", "VIP", "PORT", "PROTO", "LB", "BACKENDS", "CONNECTIONS", "DATAGRAMS", "NO-BACKEND"});
    }
    table.addRow({textField(s, "name"), textField(s, "vip"), textField(s, "port"), textField(s, "protocol"),
                  textField(s, "lb"), backendsCell(s), textField(s, "connections"), textField(s, "datagrams"),
                  textField(s, "noBackend")});
  }
  return section("Services", table);
}

std::string joinedStrings(const json& list) {
  std::string out;
  for (const auto& v : list) {
    if (!out.empty()) out += ",";
    out += text(&v);
  }
  return out.empty() ? std::string(kMissing) : out;
}

// "http=80/tcp->8080", or "80/tcp->8080" for an unnamed port.
std::string portText(const json& p) {
  std::string out;
  if (const auto name = textField(p, "name"); name != kMissing) out = name + "=";
  out += textField(p, "port") + "/" + textField(p, "protocol");
  if (const auto target = textField(p, "targetPort"); target != kMissing) out += "->" + target;
  return out;
}

std::string serviceBlock(const json& s) {
  Table title;
  title.addRow({textField(s, "name"), textField(s, "mode"), textField(s, "lb"),
                "vips=" + joinedStrings(arrayField(s, "vips"))});
  std::string out = title.render();

  std::string ports;
  for (const auto& p : arrayField(s, "ports")) ports += (ports.empty() ? "" : ", ") + portText(p);
  out += std::string(kIndent) + "ports: " + (ports.empty() ? std::string(kMissing) : ports) + "\n";

  Table endpoints;
  for (const auto& e : arrayField(s, "endpoints")) {
    if (endpoints.empty()) endpoints.addRow({"ADDRESS", "PORT", "WEIGHT", "READY", "NODE"});
    // The API omits an endpoint's port when it is the service's targetPort.
    const auto* port = field(e, "port");
    endpoints.addRow({textField(e, "address"), port ? text(port) : "(target)", textField(e, "weight"),
                      yesNoField(e, "ready"), textField(e, "node")});
  }
  out += endpoints.empty() ? std::string(kIndent) + "(no endpoints)\n" : endpoints.render(kIndent);
  return out;
}

// ---- The node proxy ("mesh") and socket redirection (newer agents) ----

bool isDevelopmentCa(const json& identity) {
  const auto* ca = field(identity, "ca");
  return ca && ca->is_string() && ca->get_ref<const std::string&>().find("development") != std::string::npos;
}

// The non-negative integer at j[key], if that is what is there.
std::optional<std::uint64_t> countField(const json& j, std::string_view key) {
  const auto* v = field(j, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) return v->get<std::uint64_t>();
  if (v->is_number_integer() && v->get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v->get<std::int64_t>());
  return std::nullopt;
}

std::string bytesField(const json& j, std::string_view key) {
  const auto n = countField(j, key);
  return n ? formatBytes(*n) : std::string(kMissing);
}

std::string ioUringLine(const json& mesh) {
  const auto* missing = field(mesh, "missingRingFeatures");
  if (missing == nullptr || !missing->is_array()) return std::string(kMissing);
  if (missing->empty()) return "all features present";
  std::string out;
  for (const auto& f : *missing) out += (out.empty() ? "" : ", ") + text(&f);
  return "fallbacks in use: " + out;
}

std::string listenersText(const json& mesh) {
  const auto* outs = field(mesh, "captureListeners");
  if (outs == nullptr || !outs->is_array()) return std::string(kMissing);
  std::string out;
  for (const auto& a : *outs) out += (out.empty() ? "" : ", ") + text(&a);
  return out.empty() ? "(none)" : out;
}

std::string hboneText(const json& mesh) {
  const auto* v = field(mesh, "hboneListener");
  if (v == nullptr) return std::string(kMissing);
  // null: the node has no node.address, so peers cannot reach it.
  if (v->is_null()) return "(none: no node.address)";
  return text(v);
}

std::string proxyBlock(const json& mesh) {
  const json& identity = objectField(mesh, "identity");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"State", textField(mesh, "proxy")},
      {"Capture listeners", listenersText(mesh)},
      {"HBONE listener", hboneText(mesh)},
      {"Workers", textField(mesh, "workers")},
      {"io_uring", ioUringLine(mesh)},
  };
  if (field(mesh, "identity") != nullptr) {
    rows.emplace_back("Trust domain", textField(identity, "trustDomain"));
    rows.emplace_back("CA", textField(identity, "ca"));
    rows.emplace_back("Node identity", textField(identity, "node"));
    rows.emplace_back("Certificates", textField(identity, "certificates"));
    rows.emplace_back("Next rotation", textField(identity, "nextRotation"));
  } else {
    rows.emplace_back("Identity", "-");
  }
  std::string out = "\nNode proxy:\n" + keyValues(rows, kIndent);
  if (isDevelopmentCa(identity)) {
    out += std::string(kIndent) +
           "WARNING: development CA: peer nodes do not trust this node's certificates and every restart makes "
           "a new CA; set mesh.ca.certFile and mesh.ca.keyFile (the same CA on every node)\n";
  }
  for (const auto& w : arrayField(mesh, "warnings")) out += std::string(kIndent) + "WARNING: " + text(&w) + "\n";
  return out;
}

// Only the counters that moved: most are failure reasons, zero when all is well.
std::string proxyCountersSection(const json& mesh) {
  std::string out = "\nProxy counters:";
  const auto* counters = field(mesh, "counters");
  if (counters == nullptr || !counters->is_object()) return out + " -\n";
  Table table;
  for (const auto& [name, value] : counters->items()) {
    if (value.is_number() && value.get<double>() == 0) continue;
    const bool bytes = name.find("bytes") != std::string::npos && value.is_number_unsigned();
    table.addRow({sanitize(name), bytes ? formatBytes(value.get<std::uint64_t>()) : text(&value)});
  }
  if (table.empty()) return out + " all zero\n";
  return out + "\n" + table.render(kIndent);
}

std::string namespacesSection(const json& mesh) {
  Table table;
  for (const auto& ns : arrayField(mesh, "namespaces")) {
    if (table.empty()) {
      table.addRow({"NAMESPACE", "ACTIVE", "TOTAL", "BYTES-IN", "BYTES-OUT", "HANDSHAKE-FAILURES", "DENIALS",
                    "TENANCY-REJECTS", "BUFFERED", "PAUSES"});
    }
    table.addRow({textField(ns, "namespace"), textField(ns, "connections_active"), textField(ns, "connections_total"),
                  bytesField(ns, "bytes_in"), bytesField(ns, "bytes_out"), textField(ns, "handshake_failures"),
                  textField(ns, "policy_denials"), textField(ns, "tenancy_rejects"), bytesField(ns, "buffered_bytes"),
                  textField(ns, "buffer_pauses")});
  }
  return section("Namespaces", table);
}

// Absent (an agent older than the node proxy): nothing.
std::string meshSection(const json& status) {
  const auto* mesh = field(status, "mesh");
  if (mesh == nullptr) return {};
  const std::string state = textField(*mesh, "proxy");
  if (state == "off") return "\nNode proxy: off\n";
  return proxyBlock(*mesh) + proxyCountersSection(*mesh) + namespacesSection(*mesh);
}

// "Socket redirect: on, 4 sockets; 120 messages (1.5KiB) redirected, 3 over TCP"
std::string socketRedirectLine(const json& status) {
  const auto* redirect = field(status, "socketRedirect");
  if (redirect == nullptr) return {};
  const auto* enabled = field(*redirect, "enabled");
  std::string line = "\nSocket redirect: ";
  if (enabled == nullptr || !enabled->is_boolean()) return line + "-\n";
  line += enabled->get<bool>() ? "on" : "off";
  if (const auto* sockets = field(*redirect, "sockets"); sockets && sockets->is_number()) {
    line += ", " + text(sockets) + " sockets";
  }
  if (field(*redirect, "messagesRedirected") != nullptr) {
    line += "; " + textField(*redirect, "messagesRedirected") + " messages (" +
            bytesField(*redirect, "bytesRedirected") + ") redirected, " + textField(*redirect, "messagesOverTcp") +
            " over TCP";
  }
  return line + "\n";
}

}  // namespace

std::string formatBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + "B";
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%s", value, kUnits[unit]);
  return buf;
}

std::string formatUptime(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e15) return std::string(kMissing);
  auto total = static_cast<long long>(seconds);
  const long long days = total / 86400;
  const long long hours = total / 3600 % 24;
  const long long minutes = total / 60 % 60;
  const long long secs = total % 60;
  // The leading unit is unpadded, the rest two digits: "1h02m03s".
  if (days > 0) return std::to_string(days) + "d" + twoDigits(hours) + "h" + twoDigits(minutes) + "m" + twoDigits(secs) + "s";
  if (hours > 0) return std::to_string(hours) + "h" + twoDigits(minutes) + "m" + twoDigits(secs) + "s";
  if (minutes > 0) return std::to_string(minutes) + "m" + twoDigits(secs) + "s";
  return std::to_string(secs) + "s";
}

std::string renderNodeStatus(const json& status) {
  return headerBlock(status) + featuresSection(status) + programsSection(status) + mapsSection(status) +
         countsLine(status) + servicesSection(status) + meshSection(status) + socketRedirectLine(status);
}

std::string renderServices(const json& services) {
  std::string out;
  for (const auto& s : arrayField(services, "services")) {
    if (!out.empty()) out += "\n";
    out += serviceBlock(s);
  }
  return out.empty() ? "No services.\n" : out;
}

}  // namespace nodemesh::cli
