// Error collection for one config parse. Validation keeps going after the
// first problem so an operator fixes a file in one round trip instead of one
// error per restart; the cap keeps a badly broken file from producing pages.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace nodemesh::config {

// Where a problem is: the dotted field path ("services[1].ports[0].port") and
// the 1-based line/column of the YAML node; line 0 means "no node to point at".
struct Location {
  std::string path;
  int line = 0;
  int column = 0;
};

class Diagnostics {
 public:
  static constexpr std::size_t kMaxErrors = 20;
  // Upper bound on YAML values visited while decoding. Aliases let a small
  // file reference one large subtree many times; this bounds the expansion.
  static constexpr std::size_t kMaxVisitedValues = 4'000'000;

  explicit Diagnostics(std::string source) : source_(std::move(source)) {}

  void add(const Location& where, const std::string& what);
  // A problem with no field path (a YAML syntax error, an empty document).
  void addGeneral(int line, int column, const std::string& what);

  // Counts one visited value; false (and one error) once the budget is spent.
  bool visit();

  bool empty() const { return lines_.empty(); }
  // True once a problem beyond the cap was seen (or the budget is spent):
  // decoders stop walking, since nothing more would be reported.
  bool full() const { return truncated_ || budgetSpent_; }
  std::size_t count() const { return lines_.size(); }
  const std::string& source() const { return source_; }

  // One problem per line in document order; a final line says when problems were dropped.
  Error toError() const;

 private:
  std::string prefix(int line, int column) const;

  struct Entry {
    int line;
    int column;
    std::string text;
  };

  std::string source_;
  std::vector<Entry> lines_;
  bool truncated_ = false;
  std::size_t visited_ = 0;
  bool budgetSpent_ = false;
};

}  // namespace nodemesh::config
