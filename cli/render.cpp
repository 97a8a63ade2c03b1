#include "render.h"

#include <cmath>
#include <cstdio>
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
std::string keyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
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

}  // namespace

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
         countsLine(status) + servicesSection(status);
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
