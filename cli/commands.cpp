#include "commands.h"

namespace nodemesh::cli {

int runQuery(const QueryTarget& target, std::string_view apiPath, OutputFormat format, Renderer render,
             std::ostream& out, std::ostream& err) {
  auto body = fetch(target.socketPath, apiPath, target.timeout);
  if (!body) {
    err << "meshctl: " << body.error().message << "\n";
    return 1;
  }
  auto invalid = [&] {
    err << "meshctl: the nodemesh agent at " << target.socketPath << " answered " << apiPath
        << " with invalid JSON\n";
    return 1;
  };
  if (format == OutputFormat::kJson) {
    // ordered_json keeps the agent's field order, which groups related
    // fields, instead of sorting keys.
    const auto j = nlohmann::ordered_json::parse(*body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalid();
    // replace: a stray invalid UTF-8 byte must not make dump() throw.
    out << j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  } else {
    const auto j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalid();
    out << render(j);
  }
  return out.good() ? 0 : 1;
}

}  // namespace nodemesh::cli
