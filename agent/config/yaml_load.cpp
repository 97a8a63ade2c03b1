#include "config/yaml_load.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

#include <exception>
#include <sstream>
#include <string>

namespace nodemesh::config {
namespace {

// yaml-cpp 0.7 (Debian's) has inputs on which Parser::HandleNextDocument
// never stops: it emits empty documents forever while allocating, so
// YAML::LoadAll hangs until the process runs out of memory (found by
// tests/fuzz/config_fuzz). A YAML stream cannot legitimately produce more
// than a few events per input byte, so a first pass counts events and gives
// up past a generous bound before LoadAll ever sees the text.
constexpr std::size_t kEventsPerByte = 8;
constexpr std::size_t kEventSlack = 1024;

struct EventBudgetExceeded {
  YAML::Mark mark;
};

class EventCounter final : public YAML::EventHandler {
 public:
  explicit EventCounter(std::size_t budget) : budget_(budget) {}

  void OnDocumentStart(const YAML::Mark& mark) override { tick(mark); }
  void OnDocumentEnd() override { tick(last_); }
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { tick(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { tick(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    tick(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    tick(mark);
  }
  void OnSequenceEnd() override { tick(last_); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    tick(mark);
  }
  void OnMapEnd() override { tick(last_); }

 private:
  void tick(const YAML::Mark& mark) {
    last_ = mark;
    if (++events_ > budget_) throw EventBudgetExceeded{mark};
  }

  std::size_t budget_;
  std::size_t events_ = 0;
  YAML::Mark last_ = YAML::Mark::null_mark();
};

void addParseError(const YAML::Mark& mark, const std::string& what, Diagnostics& diag) {
  bool located = !mark.is_null() && mark.line >= 0 && mark.column >= 0;
  diag.addGeneral(located ? mark.line + 1 : 0, located ? mark.column + 1 : 0, "invalid YAML: " + what);
}

// Runs `step`, converting everything yaml-cpp can throw into a diagnostic.
template <typename Step>
bool guarded(Step step, Diagnostics& diag) {
  try {
    step();
    return true;
  } catch (const EventBudgetExceeded& e) {
    addParseError(e.mark, "malformed document (the YAML parser stopped making progress)", diag);
  } catch (const YAML::DeepRecursion& e) {
    addParseError(e.mark, "nested too deeply", diag);  // yaml-cpp's own text says "bad file"
  } catch (const YAML::Exception& e) {
    addParseError(e.mark, e.msg, diag);
  } catch (const std::bad_alloc&) {
    throw;  // not a syntax problem; parseConfig reports it
  } catch (const std::exception& e) {
    addParseError(YAML::Mark::null_mark(), e.what(), diag);
  } catch (...) {
    addParseError(YAML::Mark::null_mark(), "unknown parser failure", diag);
  }
  return false;
}

}  // namespace

std::vector<YAML::Node> loadYamlDocuments(std::string_view text, Diagnostics& diag) {
  std::string owned(text);
  bool terminates = guarded(
      [&] {
        std::istringstream in(owned);
        YAML::Parser parser(in);
        EventCounter counter(owned.size() * kEventsPerByte + kEventSlack);
        while (parser.HandleNextDocument(counter)) {
        }
      },
      diag);
  if (!terminates) return {};
  std::vector<YAML::Node> docs;
  guarded([&] { docs = YAML::LoadAll(owned); }, diag);
  return docs;
}

}  // namespace nodemesh::config
