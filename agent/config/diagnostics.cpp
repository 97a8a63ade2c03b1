#include "config/diagnostics.h"

#include <algorithm>
#include <tuple>

namespace nodemesh::config {

std::string Diagnostics::prefix(int line, int column) const {
  if (line <= 0) return source_ + ": ";
  return source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

void Diagnostics::add(const Location& where, const std::string& what) {
  if (lines_.size() >= kMaxErrors) {
    truncated_ = true;
    return;
  }
  lines_.push_back({where.line, where.column, prefix(where.line, where.column) + where.path + ": " + what});
}

void Diagnostics::addGeneral(int line, int column, const std::string& what) {
  if (lines_.size() >= kMaxErrors) {
    truncated_ = true;
    return;
  }
  lines_.push_back({line, column, prefix(line, column) + what});
}

bool Diagnostics::visit() {
  if (budgetSpent_) return false;
  if (++visited_ <= kMaxVisitedValues) return true;
  budgetSpent_ = true;
  // Recorded even past the cap: it explains why the checks stopped.
  lines_.push_back({0, 0,
                    prefix(0, 0) + "document expands to more than " + std::to_string(kMaxVisitedValues) +
                        " values (through YAML aliases); refusing to process it"});
  return false;
}

Error Diagnostics::toError() const {
  // Checks run field by field and then across fields; sorting puts the
  // report back in the order an operator reads the file.
  std::vector<Entry> sorted = lines_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  std::string message;
  for (const Entry& entry : sorted) {
    if (!message.empty()) message += '\n';
    message += entry.text;
  }
  if (truncated_) {
    message += '\n' + source_ + ": stopped after " + std::to_string(kMaxErrors) +
               " errors; fix these and check again";
  }
  return Error{message, 0};
}

}  // namespace nodemesh::config
