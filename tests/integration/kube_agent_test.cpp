// The real agent binary on the Kubernetes source, against the fake API server
// (tests/support/fake_api_server.h) speaking the real wire format: lists, then
// chunked watch streams. The kubepods tree is a private subtree of the real
// cgroup2 mount (<cgroup2>/nodemesh-test-<pid>-k<n>/kubepods.slice/...), handed
// to the agent with the hidden --kube-cgroup-root flag, so the hooks attach to
// a real cgroup the test owns and nothing of the host's kubepods is touched.
// The ClusterIPs are in 127.96.0.0/16: from the root namespace, VIPs must be
// loopback addresses. The node addresses (InternalIPs) are loopback too, and
// the mesh ports (--mesh-config) are not the defaults, so a real agent on the
// machine never clashes.
#include <linux/bpf.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/system_paths.h"
#include "fake_api_server.h"
#include "kernel_env.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

constexpr const char* kNode = "kube-test-node";
constexpr const char* kVip = "127.96.0.30";
constexpr const char* kOtherVip = "127.96.0.31";
constexpr const char* kPodUid = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e60";
constexpr const char* kLatePodUid = "4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f71";
constexpr const char* kNodeIp = "127.0.0.41";
constexpr const char* kPeerIp = "127.0.0.42";

bool waitFor(const std::function<bool()>& cond, int ms = 10000) {
  for (int i = 0; i < ms / 20; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

std::string underscored(std::string uid) {
  for (char& c : uid)
    if (c == '-') c = '_';
  return uid;
}

// <cgroup2>/nodemesh-test-<pid>-k<n>: the parent of a systemd-driver kubepods
// tree with BestEffort pod cgroups and a container scope in each.
class FakeKubepods {
 public:
  FakeKubepods() {
    static int counter = 0;
    auto mount = discoverCgroup2Mount();
    root_ = (mount ? *mount : std::string("/sys/fs/cgroup")) + "/nodemesh-test-" + std::to_string(::getpid()) + "-k" +
            std::to_string(++counter);
    std::filesystem::create_directories(kubepods());
  }
  ~FakeKubepods() {
    // Deepest first; rmdir fails only if a client is still alive in there.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) ::rmdir(it->c_str());
    ::rmdir((kubepods() + "/kubepods-besteffort.slice").c_str());
    ::rmdir(kubepods().c_str());
    ::rmdir(root_.c_str());
  }
  const std::string& root() const { return root_; }
  std::string kubepods() const { return root_ + "/kubepods.slice"; }
  std::string podCgroup(const std::string& uid) const {
    return kubepods() + "/kubepods-besteffort.slice/kubepods-besteffort-pod" + underscored(uid) + ".slice";
  }
  // Creates the pod cgroup and its container scope (what the kubelet and
  // containerd do); returns the scope, where the pod's processes run.
  std::string addPod(const std::string& uid) {
    std::string pod = podCgroup(uid), scope = pod + "/cri-containerd-" + underscored(uid).substr(0, 8) + ".scope";
    std::filesystem::create_directories(scope);
    made_.push_back(pod);
    made_.push_back(scope);
    return scope;
  }

 private:
  std::string root_;
  std::vector<std::string> made_;
};

// Kubernetes objects as the API server writes them (list items carry no
// kind/apiVersion; watch objects do).
json meta(const std::string& ns, const std::string& name, const std::string& uid, int rv) {
  json m = {{"name", name}, {"uid", uid}, {"resourceVersion", std::to_string(rv)},
            {"creationTimestamp", "2024-05-02T09:14:07Z"}};
  if (!ns.empty()) m["namespace"] = ns;
  return m;
}

json service(const std::string& name, const std::string& vip, const std::string& uid, int rv) {
  return {{"metadata", meta("test", name, uid, rv)},
          {"spec",
           {{"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}, {"targetPort", "http"}}}},
            {"clusterIP", vip},
            {"clusterIPs", {vip}},
            {"type", "ClusterIP"},
            {"sessionAffinity", "None"},
            {"ipFamilies", {"IPv4"}},
            {"ipFamilyPolicy", "SingleStack"},
            {"internalTrafficPolicy", "Cluster"},
            {"selector", {{"app", name}}}}},
          {"status", {{"loadBalancer", json::object()}}}};
}

// One slice per backend: the backends listen on 127.0.0.1 with different
// ports, as pods resolving the named port "http" differently would.
// A Node as the API server writes it (trimmed to what a kubelet always sets).
json node(const std::string& name, const std::string& internalIp, bool ready, int rv) {
  json m = meta("", name, "5e6f7a8b-0000-4000-8000-0000000000" + std::to_string(rv % 100), rv);
  m["labels"] = {{"kubernetes.io/hostname", name}, {"kubernetes.io/os", "linux"}};
  return {{"metadata", m},
          {"spec", {{"podCIDR", "10.244.0.0/24"}, {"podCIDRs", {"10.244.0.0/24"}}}},
          {"status",
           {{"conditions",
             {{{"type", "MemoryPressure"}, {"status", "False"}, {"reason", "KubeletHasSufficientMemory"}},
              {{"type", "Ready"}, {"status", ready ? "True" : "Unknown"}, {"reason", ready ? "KubeletReady" : "NodeStatusUnknown"}}}},
            {"addresses", {{{"type", "InternalIP"}, {"address", internalIp}}, {{"type", "Hostname"}, {"address", name}}}},
            {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
            {"nodeInfo", {{"kubeletVersion", "v1.29.4"}, {"operatingSystem", "linux"}, {"architecture", "amd64"}}}}}};
}

json slice(const std::string& service, const std::string& name, std::uint16_t port, bool ready, int rv) {
  json m = meta("test", name, "e" + std::to_string(port) + "-0000-4000-8000-000000000000", rv);
  m["labels"] = {{"kubernetes.io/service-name", service},
                 {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}};
  return {{"metadata", m},
          {"addressType", "IPv4"},
          {"endpoints",
           {{{"addresses", {"127.0.0.1"}},
             {"conditions", {{"ready", ready}, {"serving", ready}, {"terminating", false}}},
             {"nodeName", kNode}}}},
          {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", port}}}}};
}

json pod(const std::string& name, const std::string& uid, int rv) {
  return {{"metadata", meta("test", name, uid, rv)},
          {"spec",
           {{"containers", {{{"name", "main"}, {"image", "registry.example.com/client:1.0"}}}},
            {"nodeName", kNode},
            {"serviceAccountName", "default"}}},
          {"status", {{"phase", "Running"}, {"qosClass", "BestEffort"}, {"podIP", "10.244.0.50"}}}};
}

std::string list(const std::string& kind, const std::string& apiVersion, const json& items) {
  return json{{"kind", kind}, {"apiVersion", apiVersion}, {"metadata", {{"resourceVersion", "100"}}}, {"items", items}}
      .dump();
}

std::string event(const std::string& type, const std::string& kind, const std::string& apiVersion, json object) {
  object["kind"] = kind;
  object["apiVersion"] = apiVersion;
  return json{{"type", type}, {"object", object}}.dump();
}

// Which backends a client in `cgroup` reaches over n connections to vip:80.
std::string ask(const std::string& cgroup, const std::string& vip, int n) {
  return runInCgroup(cgroup, [vip, n] {
    std::string s;
    for (int i = 0; i < n; ++i) s += tcpAsk(vip, 80) + ",";
    return s;
  });
}

std::set<std::string> answers(const std::string& csv) {
  std::set<std::string> out;
  std::istringstream in(csv);
  for (std::string a; std::getline(in, a, ',');) out.insert(a);
  return out;
}

json status(const AgentProcess& agent) {
  auto text = agent.meshctl("node status -o json");
  auto j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json::object() : j;
}

class KubeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override { NM_REQUIRE_ROOT(); }
};

TEST_F(KubeAgentTest, ConvergesFromTheApiServerAndFollowsItsWatches) {
  FakeKubepods kubepods;
  const std::string client = kubepods.addPod(kPodUid);
  TcpBackend a("a"), b("b"), c("c"), decoy("decoy");
  FakeApiServer api;
  // test is a meshed namespace: web is mtls (through the node proxy), other
  // is annotated back to l4.
  json other = service("other", kOtherVip, "1b2c3d4e-0000-4000-8000-000000000002", 91);
  other["metadata"]["annotations"] = {{"nodemesh.io/mode", "l4"}};
  api.setList("services", list("ServiceList", "v1",
                               {service("web", kVip, "1b2c3d4e-0000-4000-8000-000000000001", 90), other}));
  api.setList("endpointslices",
              list("EndpointSliceList", "discovery.k8s.io/v1",
                   {slice("web", "web-a", a.port(), true, 92), slice("web", "web-b", b.port(), true, 93),
                    slice("web", "web-c", c.port(), true, 94), slice("other", "other-x", decoy.port(), true, 95)}));
  api.setList("namespaces",
              list("NamespaceList", "v1",
                   {{{"metadata", {{"name", "test"},
                                   {"uid", "2c3d4e5f-0000-4000-8000-000000000003"},
                                   {"resourceVersion", "96"},
                                   {"labels", {{"kubernetes.io/metadata.name", "test"},
                                               {"nodemesh.io/dataplane-mode", "enabled"}}}}},
                     {"spec", {{"finalizers", {"kubernetes"}}}},
                     {"status", {{"phase", "Active"}}}}}));
  // This node, a Ready peer and a peer that is not Ready.
  api.setList("nodes", list("NodeList", "v1",
                            {node(kNode, kNodeIp, true, 80), node("kube-peer-1", kPeerIp, true, 81),
                             node("kube-peer-2", "127.0.0.43", false, 82)}));
  // The pods list is not ready yet: the agent must wait, applying nothing.
  api.setList("pods", R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"not yet","code":503})", 503);

  // The kubeconfig lives in a test-owned temp dir (the agent's own dir does
  // not exist before the agent object, whose arguments name the file).
  char tmpl[] = "/tmp/nodemesh-kube-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string tmpDir = tmpl;
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } removeTmp{tmpDir};
  const std::string kubeconfig = tmpDir + "/kubeconfig";
  const std::string meshConfig = tmpDir + "/mesh.yaml";
  {
    std::ofstream out(meshConfig);
    out << "mesh:\n  trustDomain: kube-test.local\n  outboundPort: 25201\n  inboundPort: 25208\n  workers: 1\n";
  }
  {
    std::ofstream out(kubeconfig);
    out << "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {server: \"" << api.url()
        << "\"}\nusers:\n- name: test\n  user: {token: test-token}\ncontexts:\n- name: fake\n"
        << "  context: {cluster: fake, user: test}\ncurrent-context: fake\n";
  }

  AgentProcess agent(AgentProcess::SourceArgs{
      {"--kubeconfig", kubeconfig, "--node-name", kNode, "--kube-cgroup-root", kubepods.root(), "--mesh-config",
       meshConfig}});
  ASSERT_TRUE(agent.start()) << agent.logs();

  // (e, before the sync) Started, datapath loaded, admin API up, nothing applied.
  json st = status(agent);
  EXPECT_EQ(st["agent"]["configVersion"], 0) << st.dump(2);
  EXPECT_EQ(st["agent"]["node"], kNode);
  EXPECT_EQ(st["agent"]["configSource"],
            "kubernetes via " + kubeconfig + " (context fake) (waiting for the first sync)")
      << st.dump(2);
  EXPECT_EQ(attachedPrograms(kubepods.kubepods(), BPF_CGROUP_INET4_CONNECT), 0);

  // The pods list comes through: the first snapshot is applied.
  api.setList("pods", list("PodList", "v1", {pod("client-0", kPodUid, 97), pod("late-0", kLatePodUid, 98)}));
  ASSERT_TRUE(waitFor([&] { return status(agent)["agent"]["configVersion"] == 1; })) << agent.logs();
  ASSERT_TRUE(waitFor([&] {
    return api.watching("services", 1) && api.watching("endpointslices", 1) && api.watching("namespaces", 1) &&
           api.watching("pods", 1) && api.watching("nodes", 1);
  })) << agent.logs();

  // (e) The status names the source; the hooks sit on the kubepods root.
  st = status(agent);
  EXPECT_EQ(st["agent"]["configSource"], "kubernetes via " + kubeconfig + " (context fake)") << st.dump(2);
  EXPECT_EQ(st["agent"]["node"], kNode);
  EXPECT_TRUE(st["agent"]["lastReloadError"].is_null()) << st.dump(2);
  EXPECT_EQ(st["counts"]["services"], 2) << st.dump(2);
  EXPECT_EQ(st["counts"]["workloads"], 1) << st.dump(2);  // late-0 has no cgroup yet
  EXPECT_EQ(attachedPrograms(kubepods.kubepods(), BPF_CGROUP_INET4_CONNECT), 1);
  EXPECT_EQ(attachedPrograms(kubepods.kubepods(), BPF_CGROUP_UDP4_SENDMSG), 1);
  bool sawPrograms = false;
  for (const auto& p : st["programs"])
    sawPrograms = sawPrograms || p["cgroup"].get<std::string>().find("/kubepods.slice") != std::string::npos;
  EXPECT_TRUE(sawPrograms) << st["programs"].dump(2);
  // The mesh: the pod is a meshed workload, the node proxy serves HBONE on
  // this node's InternalIP, the Ready peer is known.
  EXPECT_EQ(st["mesh"]["proxy"], "running") << st["mesh"].dump(2) << agent.logs();
  EXPECT_EQ(st["mesh"]["hboneListener"], std::string(kNodeIp) + ":25208") << st["mesh"].dump(2);
  ASSERT_EQ(st["mesh"]["workloads"].size(), 1u) << st["mesh"].dump(2);
  EXPECT_EQ(st["mesh"]["workloads"][0]["inbound"], "permissive");
  EXPECT_NE(agent.logs().find("1 peer nodes, node address 127.0.0.41"), std::string::npos) << agent.logs();

  // (a) A client in the pod reaches exactly the web EndpointSlices' backends
  // (through the node proxy: web is mtls), and other's (plain l4).
  auto got = answers(ask(client, kVip, 90));
  EXPECT_EQ(got, (std::set<std::string>{"a", "b", "c"}));
  EXPECT_GT(status(agent)["mesh"]["workloads"][0]["captured"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(runInCgroup(client, [] { return tcpAsk(kOtherVip, 80); }), "decoy");
  // Outside the kubepods tree the VIP is just an unbound loopback address.
  EXPECT_EQ(tcpAsk(kVip, 80), "ERR ECONNREFUSED");

  // A pod whose cgroup the kubelet creates after the API reported it joins
  // on the next rescan, without an API event.
  kubepods.addPod(kLatePodUid);
  EXPECT_TRUE(waitFor([&] { return status(agent)["counts"]["workloads"] == 2; }, 15000)) << agent.logs();

  // (b) web-b turns not ready: new connections avoid it.
  ASSERT_TRUE(api.send("endpointslices", event("MODIFIED", "EndpointSlice", "discovery.k8s.io/v1",
                                               slice("web", "web-b", b.port(), false, 110))));
  ASSERT_TRUE(waitFor([&] { return answers(ask(client, kVip, 30)).count("b") == 0; })) << agent.logs();
  EXPECT_EQ(answers(ask(client, kVip, 90)), (std::set<std::string>{"a", "c"}));

  // (d) A malformed object and an unparseable line in the watch stream: logged
  // clearly, skipped; the last good state keeps serving and nothing is applied.
  const auto versionBefore = status(agent)["agent"]["configVersion"];
  json broken = service("web", kVip, "1b2c3d4e-0000-4000-8000-000000000001", 111);
  broken["spec"]["clusterIPs"] = json::array({7});
  ASSERT_TRUE(api.send("services", event("MODIFIED", "Service", "v1", broken)));
  ASSERT_TRUE(api.send("services", "{this is not json"));
  EXPECT_TRUE(waitFor([&] {
    return agent.logs().find("skipping malformed object (MODIFIED event): Service test/web: spec.clusterIPs[0]: "
                             "must be a string") != std::string::npos;
  })) << agent.logs();
  EXPECT_TRUE(waitFor([&] { return agent.logs().find("skipping a watch event that is not") != std::string::npos; }))
      << agent.logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the source's debounce
  st = status(agent);
  EXPECT_EQ(st["agent"]["configVersion"], versionBefore) << st.dump(2);
  EXPECT_TRUE(st["agent"]["lastReloadError"].is_null()) << st.dump(2);
  EXPECT_EQ(answers(ask(client, kVip, 60)), (std::set<std::string>{"a", "c"}));

  // SIGHUP: there is no file to reload; the agent says so and keeps serving.
  agent.kill(SIGHUP);
  EXPECT_TRUE(waitFor([&] { return agent.logs().find("no config file to reload") != std::string::npos; }))
      << agent.logs();

  // (c) The Service is deleted: the VIP is no longer balanced (nothing listens
  // on it, so loopback refuses); the other service is untouched.
  ASSERT_TRUE(api.send("services", event("DELETED", "Service", "v1",
                                         service("web", kVip, "1b2c3d4e-0000-4000-8000-000000000001", 112))));
  ASSERT_TRUE(waitFor([&] { return runInCgroup(client, [] { return tcpAsk(kVip, 80); }) == "ERR ECONNREFUSED"; }))
      << agent.logs();
  EXPECT_EQ(runInCgroup(client, [] { return tcpAsk(kOtherVip, 80); }), "decoy");
  st = status(agent);
  EXPECT_EQ(st["counts"]["services"], 1) << st.dump(2);
  EXPECT_TRUE(st["agent"]["lastReloadError"].is_null()) << st.dump(2);

  // SIGTERM stops the source before the agent goes; the datapath keeps serving.
  agent.kill(SIGTERM);
  EXPECT_NE(agent.logs().find("kubernetes source stopped"), std::string::npos) << agent.logs();
  EXPECT_EQ(runInCgroup(client, [] { return tcpAsk(kOtherVip, 80); }), "decoy");
  EXPECT_EQ(agent.cleanup(), 0);
  EXPECT_EQ(attachedPrograms(kubepods.kubepods(), BPF_CGROUP_INET4_CONNECT), 0);
}

TEST_F(KubeAgentTest, KubernetesFlagsAreCheckedUpFront) {
  // --config and a Kubernetes source exclude each other.
  auto out = runCommand(std::string(NM_AGENT_BINARY) +
                        " --config /nonexistent.yaml --kubeconfig /nonexistent 2>&1; echo rc=$?");
  EXPECT_NE(out.find("excludes"), std::string::npos) << out;
  EXPECT_EQ(out.find("rc=0"), std::string::npos) << out;
  // A kubeconfig that cannot be used is refused at start with the file named.
  out = runCommand(std::string(NM_AGENT_BINARY) +
                   " --check-config --kubeconfig /nonexistent/kubeconfig --node-name n 2>&1; echo rc=$?");
  EXPECT_NE(out.find("/nonexistent/kubeconfig"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  // --mesh-config belongs to a Kubernetes source (a config file has its own mesh section) ...
  out = runCommand(std::string(NM_AGENT_BINARY) + " --mesh-config /nonexistent/mesh.yaml 2>&1; echo rc=$?");
  EXPECT_NE(out.find("--mesh-config needs --kubernetes or --kubeconfig"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  // ... and can be checked alone, naming the file.
  out = runCommand(std::string(NM_AGENT_BINARY) + " --check-config --mesh-config /nonexistent/mesh.yaml 2>&1; echo rc=$?");
  EXPECT_NE(out.find("/nonexistent/mesh.yaml"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
}

}  // namespace
}  // namespace nodemesh::testing
