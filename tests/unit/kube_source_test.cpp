// The Kubernetes source against a fake API server (tests/support/
// fake_api_server.h): list requests answered with the fixtures under
// tests/fixtures/kubernetes, watch requests with chunked streams of
// newline-delimited events, as the real API server does. Tests script it:
// canned watch replies (HTTP 410, streams that break off) and a live watch
// the test writes events into or drops.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_api_server.h"
#include "sources/kubernetes/kubernetes_source.h"

namespace nodemesh::kube {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using nodemesh::testing::FakeApiServer;

std::string fixtureText(const std::string& name) { return nodemesh::testing::kubeFixtureText(name); }
std::vector<std::string> fixtureLines(const std::string& name) { return nodemesh::testing::kubeFixtureLines(name); }

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// Captures the default logger's lines for the test's lifetime.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)), old_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("kube-test", sink_);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  bool contains(const std::string& text) const {
    for (const auto& l : sink_->last_formatted())
      if (l.find(text) != std::string::npos) return true;
    return false;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> old_;
};

constexpr const char* kWebUid = "4f6e5d4c_3b2a_4190_8f7e_6d5c4b3a2f31";
constexpr const char* kCartUid = "5a7b8c9d_0e1f_4a2b_9c3d_4e5f6a7b8c32";
constexpr const char* kDbUid = "6b8c9d0e_1f2a_4b3c_8d4e_5f6a7b8c9d33";
constexpr const char* kApiUid = "9e1f2a3b_4c5d_4e6f_9a7b_8c9d0e1f2a36";
constexpr const char* kNewWebUid = "1a3b4c5d_6e7f_4a8b_9c0d_1e2f3a4b5c38";
constexpr const char* kWorkerUid = "0f2a3b4c_5d6e_4f7a_8b8c_9d0e1f2a3b37";

std::string burstable(const char* uid) {
  return std::string("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod") + uid + ".slice";
}
std::string besteffort(const char* uid) {
  return std::string("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod") + uid + ".slice";
}
std::string guaranteed(const char* uid) {
  return std::string("/kubepods.slice/kubepods-pod") + uid + ".slice";
}

class KubeSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nm-kube-source-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    cgroupRoot_ = tmpl;
    for (const auto& p : {burstable(kWebUid), guaranteed(kCartUid), besteffort(kDbUid), burstable(kApiUid)})
      mkCgroup(p);
    server_.setList("services", fixtureText("services.json"));
    server_.setList("endpointslices", fixtureText("endpointslices.json"));
    server_.setList("namespaces", fixtureText("namespaces.json"));
    server_.setList("pods", fixtureText("pods.json"));
    server_.setList("nodes", fixtureText("nodes.json"));
  }
  void TearDown() override {
    source_.reset();
    std::error_code ec;
    fs::remove_all(cgroupRoot_, ec);
  }

  void mkCgroup(const std::string& rel) { fs::create_directories(cgroupRoot_ + rel + "/cri-containerd-abc.scope"); }

  void start() {
    KubernetesSourceOptions o;
    o.client.server = server_.url();
    o.client.origin = "fake API server";
    o.nodeName = "node-a";
    o.cgroupRoot = cgroupRoot_;
    o.debounce = 20ms;
    o.rescanInterval = 50ms;
    o.backoff.random = [] { return 0.5; };  // jitter factor exactly 1
    o.backoff.sleep = [this](std::chrono::milliseconds d, const std::atomic<bool>&) {
      {
        std::lock_guard lock(mu_);
        sleeps_.push_back(d);
      }
      std::this_thread::sleep_for(2ms);
    };
    o.timing.watchTimeoutSeconds = 30;
    o.mesh = mesh_;
    source_ = std::make_unique<KubernetesSource>(o, [this](state::Snapshot s) {
      std::lock_guard lock(mu_);
      published_.push_back(std::move(s));
    });
    ASSERT_TRUE(source_->start().ok());
  }

  std::optional<state::Snapshot> latest() {
    std::lock_guard lock(mu_);
    if (published_.empty()) return std::nullopt;
    return published_.back();
  }
  std::size_t publishCount() {
    std::lock_guard lock(mu_);
    return published_.size();
  }
  std::vector<std::chrono::milliseconds> sleeps() {
    std::lock_guard lock(mu_);
    return sleeps_;
  }
  // Waits until the latest snapshot satisfies pred.
  bool converges(const std::function<bool(const state::Snapshot&)>& pred) {
    return eventually([&] {
      auto s = latest();
      return s && pred(*s);
    });
  }
  static const state::Service* find(const state::Snapshot& s, const std::string& q) {
    for (const auto& svc : s.services)
      if (svc.qualifiedName() == q) return &svc;
    return nullptr;
  }
  static std::vector<std::string> serviceNames(const state::Snapshot& s) {
    std::vector<std::string> v;
    for (const auto& svc : s.services) v.push_back(svc.qualifiedName());
    return v;
  }
  static std::vector<std::string> peerNames(const state::Snapshot& s) {
    std::vector<std::string> v;
    for (const auto& p : s.peers) v.push_back(p.name);
    return v;
  }
  static std::vector<std::string> workloadCgroups(const state::Snapshot& s) {
    std::vector<std::string> v;
    for (const auto& w : s.workloads) v.push_back(w.cgroup);
    return v;
  }
  bool allWatching() {
    return server_.watching("services", 1) && server_.watching("endpointslices", 1) &&
           server_.watching("namespaces", 1) && server_.watching("pods", 1) && server_.watching("nodes", 1);
  }

  static inline const std::vector<std::string> kInitialServices = {"default/kubernetes", "kube-system/kube-dns",
                                                                   "shop/cart", "shop/web"};

  FakeApiServer server_;
  state::MeshSettings mesh_;  // what start() hands the source
  std::string cgroupRoot_;
  std::unique_ptr<KubernetesSource> source_;
  std::mutex mu_;
  std::vector<state::Snapshot> published_;
  std::vector<std::chrono::milliseconds> sleeps_;
};

TEST_F(KubeSourceTest, InitialListConvergesToTheExpectedSnapshot) {
  start();
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.services.size() == 4 && s.workloads.size() == 4; }));
  ASSERT_TRUE(eventually([&] { return allWatching(); }));
  state::Snapshot s = *latest();
  EXPECT_EQ(serviceNames(s), kInitialServices);
  EXPECT_EQ(s.nodeName, "node-a");
  EXPECT_EQ(s.servedCgroup, "/kubepods.slice");  // detected from the tree
  EXPECT_EQ(workloadCgroups(s), (std::vector<std::string>{besteffort(kDbUid), burstable(kWebUid), burstable(kApiUid),
                                                          guaranteed(kCartUid)}));
  const state::Service* web = find(s, "shop/web");
  ASSERT_NE(web, nullptr);
  ASSERT_EQ(web->endpoints.size(), 3u);
  EXPECT_EQ(web->endpoints[2].port, std::optional<std::uint16_t>(8081));
  const state::Service* cart = find(s, "shop/cart");
  ASSERT_NE(cart, nullptr);
  EXPECT_FALSE(cart->endpoints[1].ready);

  // The wire: paged lists, pods selected by node, watches from the list's version with bookmarks.
  EXPECT_EQ(server_.requests("pods")[0], "limit=500&fieldSelector=spec.nodeName%3Dnode-a");
  EXPECT_EQ(server_.requests("services")[0], "limit=500");
  EXPECT_EQ(server_.requests("services")[1], "watch=1&resourceVersion=5000&allowWatchBookmarks=true&timeoutSeconds=30");
  EXPECT_EQ(
      server_.requests("pods")[1],
      "watch=1&resourceVersion=5000&allowWatchBookmarks=true&timeoutSeconds=30&fieldSelector=spec.nodeName%3Dnode-a");
  EXPECT_EQ(server_.requests("nodes")[0], "limit=500");
  EXPECT_EQ(server_.requests("nodes")[1], "watch=1&resourceVersion=5000&allowWatchBookmarks=true&timeoutSeconds=30");
  EXPECT_TRUE(source_->synced());
  EXPECT_EQ(source_->resourceVersion(Kind::kService), "5000");
  EXPECT_EQ(source_->resourceVersion(Kind::kNode), "5000");

  // The mesh: this node's address, the Ready peers, meshed workloads, mtls in the meshed namespace.
  EXPECT_EQ(s.nodeAddress, state::IpAddress::parse("192.168.56.11"));
  EXPECT_EQ(peerNames(s), (std::vector<std::string>{"control-plane", "node-b"}));
  EXPECT_EQ(s.mesh.trustDomain, "cluster.local");
  for (const auto& w : s.workloads) EXPECT_TRUE(w.meshed) << w.cgroup;
  EXPECT_EQ(cart->mode, state::ServiceMode::kMtls);
  EXPECT_EQ(find(s, "default/kubernetes")->mode, state::ServiceMode::kL4);
}

TEST_F(KubeSourceTest, NothingIsPublishedUntilNodesAreListed) {
  server_.setList("nodes", R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"not yet","code":503})",
                  503);
  start();
  ASSERT_TRUE(eventually([&] { return server_.count("nodes", false) >= 2 && server_.watching("pods", 1); }));
  std::this_thread::sleep_for(100ms);  // past debounce and a rescan
  EXPECT_EQ(publishCount(), 0u);
  EXPECT_FALSE(source_->synced());
  server_.setList("nodes", fixtureText("nodes.json"));
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.peers.size() == 2 && s.nodeAddress.has_value(); }));
}

TEST_F(KubeSourceTest, NodeEventsUpdatePeersAndAMalformedNodeKeepsItsLastGoodVersion) {
  LogCapture log;
  mesh_.trustDomain = "prod.example.com";
  mesh_.inboundPort = 15108;
  start();
  ASSERT_TRUE(eventually([&] { return allWatching() && latest().has_value(); }));
  EXPECT_EQ(latest()->mesh.trustDomain, "prod.example.com");
  EXPECT_EQ(latest()->mesh.inboundPort, 15108);
  EXPECT_TRUE(eventually([&] { return log.contains("kubernetes: Node node-d has no InternalIP"); }));

  // node-c turns Ready; node-b's update is malformed (not an IP); control-plane
  // is deleted; node-e is added.
  for (const auto& line : fixtureLines("watch-nodes.ndjson")) ASSERT_TRUE(server_.send("nodes", line));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    return peerNames(s) == std::vector<std::string>{"node-b", "node-c", "node-e"};
  }));
  state::Snapshot s = *latest();
  EXPECT_EQ(s.findPeer("node-b")->address.toString(), "192.168.56.12");  // the last good version
  EXPECT_EQ(s.findPeer("node-c")->address.toString(), "192.168.56.13");
  EXPECT_EQ(s.nodeAddress, state::IpAddress::parse("192.168.56.11"));
  EXPECT_TRUE(log.contains(
      "skipping malformed object (MODIFIED event): Node node-b: status.addresses[0].address: must be an IP "
      "address, got \"192.168.56.300\""));
  EXPECT_TRUE(eventually([&] { return source_->resourceVersion(Kind::kNode) == "5053"; }));
  EXPECT_EQ(server_.count("nodes", false), 1u);
}

TEST_F(KubeSourceTest, WatchEventsUpdateTheSnapshot) {
  start();
  ASSERT_TRUE(eventually([&] { return allWatching() && latest().has_value(); }));

  // Services: orders ADDED, web MODIFIED (maglev annotation), kubernetes DELETED.
  for (const auto& line : fixtureLines("watch-services.ndjson")) ASSERT_TRUE(server_.send("services", line));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    return serviceNames(s) ==
               std::vector<std::string>{"kube-system/kube-dns", "shop/cart", "shop/orders", "shop/web"} &&
           find(s, "shop/web")->lb == state::LbAlgorithm::kMaglev;
  }));
  EXPECT_TRUE(eventually([&] { return source_->resourceVersion(Kind::kService) == "5012"; }));
  const state::Snapshot afterServices = *latest();
  EXPECT_TRUE(find(afterServices, "shop/orders")->endpoints.empty());  // no slice yet: VIP refuses at once

  // EndpointSlices: cart-1 turns ready; the canary slice is deleted.
  for (const auto& line : fixtureLines("watch-endpointslices.ndjson"))
    ASSERT_TRUE(server_.send("endpointslices", line));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    auto* cart = find(s, "shop/cart");
    auto* web = find(s, "shop/web");
    return cart && cart->endpoints.size() == 4 && cart->endpoints[1].ready && web && web->endpoints.size() == 2;
  }));
  // Every remaining web backend uses 8080 now: carried by the port, not per endpoint.
  const state::Snapshot afterSlices = *latest();
  EXPECT_EQ(find(afterSlices, "shop/web")->ports[0].targetPort, 8080);
  EXPECT_FALSE(find(afterSlices, "shop/web")->endpoints[0].port.has_value());

  // Pods: a new web pod ADDED (its cgroup does not exist yet), db-0 DELETED.
  for (const auto& line : fixtureLines("watch-pods.ndjson")) ASSERT_TRUE(server_.send("pods", line));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    return workloadCgroups(s) == std::vector<std::string>{burstable(kWebUid), burstable(kApiUid), guaranteed(kCartUid)};
  }));
  EXPECT_TRUE(eventually([&] { return source_->pendingPods().size() == 1; }));
  EXPECT_EQ(source_->pendingPods()[0], "shop/web-7f9c6d-pqrst (uid 1a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c38)");
  // The kubelet creates the pod cgroup after the API reports the pod: the
  // periodic rescan picks it up without any API event.
  mkCgroup(burstable(kNewWebUid));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    return workloadCgroups(s) == std::vector<std::string>{burstable(kNewWebUid), burstable(kWebUid), burstable(kApiUid),
                                                          guaranteed(kCartUid)};
  }));
  EXPECT_TRUE(source_->pendingPods().empty());

  // Namespaces: payments opts in, so worker-0 joins once its cgroup exists.
  mkCgroup(burstable(kWorkerUid));
  for (const auto& line : fixtureLines("watch-namespaces.ndjson")) ASSERT_TRUE(server_.send("namespaces", line));
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.workloads.size() == 5; }));

  // A pod cgroup removed on disk (containers gone before the API says so) drops the workload.
  fs::remove_all(cgroupRoot_ + burstable(kWorkerUid));
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.workloads.size() == 4; }));
  EXPECT_EQ(server_.count("services", false), 1u);  // never relisted
}

TEST_F(KubeSourceTest, BookmarkAdvancesTheVersionWithoutAChange) {
  start();
  ASSERT_TRUE(eventually([&] { return allWatching() && latest().has_value(); }));
  std::this_thread::sleep_for(150ms);  // let debounce and a few rescans pass
  std::size_t before = publishCount();
  ASSERT_TRUE(server_.send("services", fixtureLines("watch-bookmark.ndjson")[0]));
  ASSERT_TRUE(eventually([&] { return source_->resourceVersion(Kind::kService) == "5100"; }));
  std::this_thread::sleep_for(150ms);
  EXPECT_EQ(publishCount(), before);
  // The next watch resumes from the bookmark.
  server_.drop("services");
  ASSERT_TRUE(eventually([&] { return server_.watching("services", 2); }));
  EXPECT_EQ(server_.requests("services").back(),
            "watch=1&resourceVersion=5100&allowWatchBookmarks=true&timeoutSeconds=30");
  EXPECT_EQ(server_.count("services", false), 1u);
}

TEST_F(KubeSourceTest, GoneEventTriggersRelistThatReplacesTheCache) {
  start();
  ASSERT_TRUE(eventually([&] { return allWatching() && latest().has_value(); }));
  // The cluster moved on while we were not looking: cart is gone, rv 6000.
  auto list = nlohmann::json::parse(fixtureText("services.json"));
  list["metadata"]["resourceVersion"] = "6000";
  auto& items = list["items"];
  items.erase(items.begin() + 2);  // shop/cart
  server_.setList("services", list.dump());
  ASSERT_TRUE(server_.send("services", fixtureLines("watch-gone.ndjson")[0]));
  ASSERT_TRUE(converges([](const state::Snapshot& s) {
    return serviceNames(s) == std::vector<std::string>{"default/kubernetes", "kube-system/kube-dns", "shop/web"};
  }));
  ASSERT_TRUE(eventually([&] { return server_.watching("services", 2); }));
  EXPECT_EQ(server_.count("services", false), 2u);
  EXPECT_EQ(source_->listCount(Kind::kService), 2u);
  EXPECT_EQ(server_.requests("services").back(),
            "watch=1&resourceVersion=6000&allowWatchBookmarks=true&timeoutSeconds=30");
  EXPECT_TRUE(sleeps().empty());  // a relist is not a failure: no backoff
}

TEST_F(KubeSourceTest, HttpGoneOnWatchTriggersRelist) {
  server_.queueWatch("services", FakeApiServer::Reply{410, fixtureText("status-gone.json"), {}, false});
  start();
  ASSERT_TRUE(eventually([&] { return server_.watching("services", 2); }));
  EXPECT_EQ(server_.count("services", false), 2u);
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.services.size() == 4; }));
}

TEST_F(KubeSourceTest, DroppedStreamsReconnectWithBackoffFromTheLastVersion) {
  // Three streams break off at once, then one delivers an event and breaks off.
  for (int i = 0; i < 3; ++i) server_.queueWatch("services", FakeApiServer::Reply{200, "", {}, true});
  server_.queueWatch("services", FakeApiServer::Reply{200, "", {fixtureLines("watch-services.ndjson")[0]}, true});
  start();
  ASSERT_TRUE(eventually([&] { return server_.watching("services", 5); }));
  auto reqs = server_.requests("services");
  ASSERT_EQ(reqs.size(), 6u);  // one list, five watches
  for (int i = 1; i <= 4; ++i)
    EXPECT_EQ(reqs[i], "watch=1&resourceVersion=5000&allowWatchBookmarks=true&timeoutSeconds=30") << i;
  // Resumes after the event it saw, without listing again.
  EXPECT_EQ(reqs[5], "watch=1&resourceVersion=5011&allowWatchBookmarks=true&timeoutSeconds=30");
  // Exponential backoff; it starts over once a stream delivered something.
  EXPECT_EQ(sleeps(), (std::vector<std::chrono::milliseconds>{500ms, 1000ms, 2000ms, 500ms}));
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return find(s, "shop/orders") != nullptr; }));
}

TEST(KubeBackoff, DoublesUpToTheCapWithJitterBounds) {
  BackoffPolicy b;
  EXPECT_EQ(b.base(1), 500ms);
  EXPECT_EQ(b.base(2), 1000ms);
  EXPECT_EQ(b.base(6), 16000ms);
  EXPECT_EQ(b.base(7), 30000ms);
  EXPECT_EQ(b.base(100), 30000ms);
}

TEST_F(KubeSourceTest, HalfReadListIsNeverApplied) {
  // The first services list breaks off mid-body: nothing may be published
  // until a complete list has been read.
  std::string full = fixtureText("services.json");
  server_.queueList("services", full.substr(0, full.size() / 2));
  server_.queueList("services", R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":500})", 500);
  start();
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.services.size() == 4; }));
  std::lock_guard lock(mu_);
  for (const auto& s : published_) EXPECT_EQ(serviceNames(s), kInitialServices);
  EXPECT_EQ(sleeps_.size(), 2u);
}

TEST_F(KubeSourceTest, MalformedObjectsAreSkippedWithALogLineAndTheRestKept) {
  LogCapture log;
  server_.setList("services", fixtureText("services-malformed.json"));
  start();
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return s.services.size() == 4; }));
  EXPECT_EQ(serviceNames(*latest()), kInitialServices);
  EXPECT_TRUE(eventually([&] {
    return log.contains(
        "skipping malformed object (in list): Service shop/broken: spec.ports[0].port: must be "
        "1..65535, got 70000");
  }));

  ASSERT_TRUE(eventually([&] { return allWatching(); }));
  for (const auto& line : fixtureLines("watch-malformed.ndjson")) ASSERT_TRUE(server_.send("services", line));
  // The last event (orders ADDED) lands; the broken ones change nothing.
  ASSERT_TRUE(converges([](const state::Snapshot& s) { return find(s, "shop/orders") != nullptr; }));
  state::Snapshot s = *latest();
  EXPECT_EQ(serviceNames(s), (std::vector<std::string>{"default/kubernetes", "kube-system/kube-dns", "shop/cart",
                                                       "shop/orders", "shop/web"}));
  // web keeps its last good version (the MODIFIED one had a non-string clusterIP).
  EXPECT_EQ(find(s, "shop/web")->vips[0].toString(), "10.96.10.10");
  EXPECT_TRUE(
      log.contains("skipping malformed object (ADDED event): Service shop/broken: spec.ports[0].port: must "
                   "be an integer, got string"));
  EXPECT_TRUE(
      log.contains("skipping malformed object (MODIFIED event): Service shop/web: spec.clusterIPs[0]: must "
                   "be a string"));
  EXPECT_TRUE(log.contains("skipping a watch event that is not {\"type\",\"object\"} JSON"));
  EXPECT_EQ(server_.count("services", false), 1u);
}

}  // namespace
}  // namespace nodemesh::kube
