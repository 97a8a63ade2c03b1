// Time as the identity code sees it: wall-clock (certificates carry UTC
// times), injectable so tests and rotation never sleep.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace nodemesh::identity {

using TimePoint = std::chrono::system_clock::time_point;
using Clock = std::function<TimePoint()>;

inline TimePoint systemNow() {
  return std::chrono::system_clock::now();
}

// "2025-01-02T03:04:05Z"
std::string formatUtc(TimePoint t);

}  // namespace nodemesh::identity
