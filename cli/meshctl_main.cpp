// meshctl: inspect the nodemesh agent on this node through its admin API.
#include <iostream>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "render.h"

#ifndef NM_VERSION
#define NM_VERSION "unknown"  // the build should define it from the project version
#endif

namespace {

using nodemesh::cli::OutputFormat;

const std::map<std::string, OutputFormat> kFormats = {{"text", OutputFormat::kText},
                                                      {"json", OutputFormat::kJson}};

void addOutputOption(CLI::App* cmd, OutputFormat& format) {
  cmd->add_option("-o,--output", format, "output format: text or json")
      ->transform(CLI::CheckedTransformer(kFormats, CLI::ignore_case))
      ->default_str("text");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshctl: inspect the nodemesh agent on this node"};
  app.require_subcommand(1);
  // Let --socket appear after the subcommand as well.
  app.fallthrough();

  nodemesh::cli::QueryTarget target;
  app.add_option("--socket", target.socketPath, "the agent's admin API socket")->capture_default_str();

  OutputFormat statusFormat = OutputFormat::kText;
  auto* node = app.add_subcommand("node", "node-level views");
  node->require_subcommand(1);
  auto* nodeStatus = node->add_subcommand("status", "agent, kernel features, programs, maps and services");
  addOutputOption(nodeStatus, statusFormat);

  OutputFormat servicesFormat = OutputFormat::kText;
  auto* services = app.add_subcommand("services", "services with their ports and endpoints");
  addOutputOption(services, servicesFormat);

  auto* version = app.add_subcommand("version", "print meshctl's version");

  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "meshctl " << NM_VERSION << "\n";
    return 0;
  }
  if (nodeStatus->parsed()) {
    return nodemesh::cli::runQuery(target, "/v1/status", statusFormat, nodemesh::cli::renderNodeStatus, std::cout,
                                   std::cerr);
  }
  if (services->parsed()) {
    return nodemesh::cli::runQuery(target, "/v1/services", servicesFormat, nodemesh::cli::renderServices,
                                   std::cout, std::cerr);
  }
  std::cerr << app.help();
  return 1;
}
