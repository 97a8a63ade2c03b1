// Column-aligned plain-text tables, as kubectl prints them: each column as
// wide as its widest cell, two spaces between columns, no trailing spaces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nodemesh::cli {

class Table {
 public:
  // The first row added is usually the header; the table does not care.
  void addRow(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Every line starts with indent and ends with '\n'.
  std::string render(std::string_view indent = "") const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// Display width: UTF-8 code points, so non-ASCII names do not skew columns.
std::size_t displayWidth(std::string_view s);

}  // namespace nodemesh::cli
