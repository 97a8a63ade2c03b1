// /healthz and /readyz decisions, and their HTTP routes.
#include <gtest/gtest.h>

#include "daemon/metrics_health.h"

namespace nodemesh::daemon {
namespace {

using namespace std::chrono_literals;

LivenessInputs live(LoopState loop, std::optional<std::chrono::steady_clock::duration> oldest,
                    std::chrono::steady_clock::duration stuckAfter = kControlStuckAfter) {
  LivenessInputs in;
  in.loop = loop;
  in.oldestOperation = oldest;
  in.stuckAfter = stuckAfter;
  return in;
}

ReadinessInputs ready(bool loaded, bool applied, std::optional<std::string> source = std::nullopt,
                      std::optional<std::string> error = std::nullopt) {
  ReadinessInputs in;
  in.datapathLoaded = loaded;
  in.firstSnapshotApplied = applied;
  in.externalSource = std::move(source);
  in.lastError = std::move(error);
  return in;
}

TEST(Liveness, AliveWhileStartingOrRunningAndNotStuck) {
  EXPECT_TRUE(liveness(live(LoopState::kStarting, std::nullopt)).ok);
  EXPECT_TRUE(liveness(live(LoopState::kRunning, std::nullopt)).ok);
  EXPECT_EQ(liveness(live(LoopState::kRunning, std::nullopt)).reason, "ok");
  EXPECT_TRUE(liveness(live(LoopState::kRunning, std::chrono::steady_clock::duration(5s))).ok);
  // A start, reload or apply that has not finished in time is a hang.
  const auto stuck = liveness(live(LoopState::kRunning, std::chrono::steady_clock::duration(61s)));
  EXPECT_FALSE(stuck.ok);
  EXPECT_NE(stuck.reason.find("running for 61s"), std::string::npos) << stuck.reason;
  EXPECT_FALSE(liveness(live(LoopState::kStarting, std::chrono::steady_clock::duration(kControlStuckAfter + 1s))).ok);
  EXPECT_FALSE(liveness(live(LoopState::kRunning, std::chrono::steady_clock::duration(2s), 1s)).ok);
}

TEST(Liveness, DeadOnceTheControlLoopStopped) {
  const auto r = liveness(live(LoopState::kStopped, std::nullopt));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("stopped"), std::string::npos);
}

TEST(Readiness, NeedsTheDatapathAndAFirstSnapshot) {
  auto r = readiness(ready(false, false));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("datapath is not loaded"), std::string::npos) << r.reason;

  r = readiness(ready(true, false));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "no config applied yet");

  r = readiness(ready(true, false, "kubernetes via in-cluster config"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "waiting for the first sync from kubernetes via in-cluster config");

  r = readiness(ready(true, false, "kubernetes via k", "services[0]: bad VIP\nsecond line"));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.reason, "waiting for the first sync from kubernetes via k; last snapshot rejected: services[0]: bad VIP");

  r = readiness(ready(true, true));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.reason, "ok");
}

TEST(Readiness, ARejectedReloadAfterTheFirstSnapshotKeepsTheAgentReady) {
  EXPECT_TRUE(readiness(ready(true, true, std::nullopt, "bad")).ok);
}

TEST(Readiness, AReasonStaysOneShortLine) {
  const auto r = readiness(ready(true, false, std::nullopt, std::string(5000, 'x')));
  EXPECT_EQ(r.reason.find('\n'), std::string::npos);
  EXPECT_LT(r.reason.size(), 400u);
}

}  // namespace
}  // namespace nodemesh::daemon
