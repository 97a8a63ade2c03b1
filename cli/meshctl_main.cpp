// meshctl: inspect the nodemesh agent on this node through its admin API.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "render.h"

#ifndef NM_VERSION
#define NM_VERSION "unknown"  // the build should define it from the project version
#endif

namespace {

using nodemesh::cli::OutputFormat;

// Usage errors exit 2, like most Unix tools; 1 means the agent could not answer.
constexpr int kUsageError = 2;

void addOutputOption(CLI::App* cmd, std::string& format) {
  cmd->add_option("-o,--output", format, "output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

OutputFormat toFormat(const std::string& name) { return name == "json" ? OutputFormat::kJson : OutputFormat::kText; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshctl: inspect the nodemesh agent on this node"};
  app.require_subcommand(1);
  // Let --socket appear after the subcommand as well.
  app.fallthrough();

  nodemesh::cli::QueryTarget target;
  app.add_option("--socket", target.socketPath, "the agent's admin API socket")->capture_default_str();

  std::string statusFormat = "text";
  auto* node = app.add_subcommand("node", "node-level views");
  node->require_subcommand(1);
  auto* nodeStatus = node->add_subcommand("status", "agent, kernel features, programs, maps and services");
  addOutputOption(nodeStatus, statusFormat);

  std::string servicesFormat = "text";
  auto* services = app.add_subcommand("services", "services with their ports and endpoints");
  addOutputOption(services, servicesFormat);

  auto* version = app.add_subcommand("version", "print meshctl's version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error plus a hint
    return rc == 0 ? 0 : kUsageError;
  }

  if (version->parsed()) {
    std::cout << "meshctl " << NM_VERSION << "\n";
    return 0;
  }
  if (nodeStatus->parsed()) {
    return nodemesh::cli::runQuery(target, "/v1/status", toFormat(statusFormat), nodemesh::cli::renderNodeStatus, std::cout,
                                   std::cerr);
  }
  if (services->parsed()) {
    return nodemesh::cli::runQuery(target, "/v1/services", toFormat(servicesFormat), nodemesh::cli::renderServices,
                                   std::cout, std::cerr);
  }
  std::cerr << app.help();
  return 1;
}
