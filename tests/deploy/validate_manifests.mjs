// Validates every document of deploy/kubernetes/*.yaml against the Kubernetes
// OpenAPI schemas (kubernetes-models), offline: no API server can run here.
// Adds the checks the schemas cannot express and that this repo relies on,
// and runs negative cases so a validator that accepts everything fails.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";

const here = dirname(fileURLToPath(import.meta.url));
const manifestDir = resolve(process.argv[2] ?? join(here, "../../deploy/kubernetes"));

// Only the kinds this repo ships; anything else is a mistake, not a pass.
const models = new Map();
for (const mod of [core, apps, rbac])
  for (const M of Object.values(mod))
    if (typeof M === "function" && M.apiVersion && M.kind && !M.kind.endsWith("List"))
      models.set(`${M.apiVersion}/${M.kind}`, M);
const allowedVerbs = new Set(["get", "list", "watch"]);
// What the Kubernetes source watches (docs/KUBERNETES.md), per API group:
// nothing more (least privilege), nothing less (the source would never sync).
const readResources = new Map([
  ["", ["namespaces", "nodes", "pods", "services"]],
  ["discovery.k8s.io", ["endpointslices"]],
]);

// The resources a ClusterRole grants, as "group/resource" strings.
function granted(role) {
  const out = new Set();
  for (const rule of role.rules ?? [])
    for (const group of rule.apiGroups ?? [])
      for (const resource of rule.resources ?? []) out.add(`${group || "core"}/${resource}`);
  return out;
}

// Returns a list of problems with one parsed document (empty = valid).
function check(doc) {
  if (!doc || typeof doc !== "object") return ["document is not a map"];
  const Model = models.get(`${doc.apiVersion}/${doc.kind}`);
  if (!Model) return [`unknown apiVersion/kind ${doc.apiVersion}/${doc.kind}`];
  const problems = [];
  try {
    new Model(doc).validate();
  } catch (e) {
    problems.push(`schema: ${e.message}`);
  }
  if (doc.kind === "ClusterRole" || doc.kind === "Role")
    for (const rule of doc.rules ?? [])
      for (const verb of rule.verbs ?? [])
        if (!allowedVerbs.has(verb)) problems.push(`RBAC verb '${verb}' on ${rule.resources}: read-only only`);
  if (doc.kind === "ClusterRole" && doc.metadata?.name === "nodemesh-agent") {
    const have = granted(doc);
    const want = new Set([...readResources].flatMap(([g, rs]) => rs.map((r) => `${g || "core"}/${r}`)));
    for (const r of have) if (!want.has(r)) problems.push(`RBAC grants ${r}, which the agent does not read`);
    for (const r of want) if (!have.has(r)) problems.push(`RBAC lacks ${r}, which the Kubernetes source watches`);
  }
  const spec = doc.spec?.template?.spec;
  if (doc.kind === "DaemonSet" && spec) {
    // The API server (not the schema) rejects these; catch them here.
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const sc = c.securityContext ?? {};
      for (const m of c.volumeMounts ?? [])
        if (m.mountPropagation === "Bidirectional" && sc.privileged !== true)
          problems.push(`${c.name}: Bidirectional mount ${m.mountPath} needs privileged: true`);
      if (sc.allowPrivilegeEscalation === false && (sc.privileged || sc.capabilities?.add?.includes("SYS_ADMIN")))
        problems.push(`${c.name}: allowPrivilegeEscalation: false conflicts with privileged/SYS_ADMIN`);
    }
    // The node proxy listens on the node's address (HBONE :15008); with
    // hostNetwork the default dnsPolicy would lose cluster DNS.
    if (spec.hostNetwork !== true) problems.push("hostNetwork must be true (the proxy listens on the node IP)");
    if (spec.hostNetwork === true && spec.dnsPolicy !== "ClusterFirstWithHostNet")
      problems.push(`dnsPolicy ${spec.dnsPolicy ?? "ClusterFirst"} with hostNetwork: use ClusterFirstWithHostNet`);
    const labels = doc.spec.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(doc.spec.selector?.matchLabels ?? {}))
      if (labels[k] !== v) problems.push(`selector ${k}=${v} does not match the template labels`);
  }
  return problems;
}

let passed = 0, failed = 0;
function expect(name, problems, shouldBeValid) {
  const ok = shouldBeValid ? problems.length === 0 : problems.length > 0;
  ok ? passed++ : failed++;
  const detail = problems.length ? `: ${problems.join("; ").slice(0, 400)}` : "";
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${shouldBeValid ? "" : " (must be rejected)"}${detail}`);
}

const docsByKind = {};
const files = readdirSync(manifestDir).filter((f) => /\.ya?ml$/.test(f)).sort();
if (files.length === 0) expect(`${manifestDir} has manifests`, ["no *.yaml files"], true);
for (const file of files) {
  let docs;
  try {
    docs = yaml.loadAll(readFileSync(join(manifestDir, file), "utf8")).filter((d) => d != null);
  } catch (e) {
    expect(file, [`invalid YAML: ${e.message}`], true);
    continue;
  }
  docs.forEach((doc, i) => {
    expect(`${file}[${i}] ${doc?.kind}/${doc?.metadata?.name}`, check(doc), true);
    if (doc?.kind) docsByKind[doc.kind] = doc;
  });
}

// Each ConfigMap entry must be a file the agent accepts; the schema only sees
// a string. mesh.yaml is the --mesh-config file (only the mesh section), any
// other key a whole config. Needs the built agent (NODEMESH_AGENT, set by ctest).
const agent = process.env.NODEMESH_AGENT;
for (const [key, text] of Object.entries(docsByKind.ConfigMap?.data ?? {})) {
  if (!agent) {
    console.log(`skip ConfigMap ${key} --check-config: NODEMESH_AGENT not set`);
    continue;
  }
  const dir = mkdtempSync(join(tmpdir(), "nm-cm-"));
  let problems = [];
  try {
    writeFileSync(join(dir, key), text);
    const flag = key === "mesh.yaml" ? "--mesh-config" : "--config";
    execFileSync(agent, ["--check-config", flag, join(dir, key)], { stdio: "pipe" });
  } catch (e) {
    problems = [String(e.stderr || e.message).trim()];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(`ConfigMap ${key} passes nodemesh-agent --check-config`, problems, true);
}

// The DaemonSet's --mesh-config file must come from a shipped ConfigMap key
// (a path nothing mounts would stop every agent at start).
function meshConfigProblems(daemonSet, configMaps) {
  const spec = daemonSet?.spec?.template?.spec ?? {};
  const problems = [];
  for (const c of spec.containers ?? []) {
    const arg = (c.command ?? []).concat(c.args ?? []).find((a) => a.startsWith("--mesh-config="));
    if (!arg) continue;
    const path = arg.slice("--mesh-config=".length);
    const mount = (c.volumeMounts ?? []).find((m) => path.startsWith(m.mountPath.replace(/\/?$/, "/")));
    const volume = (spec.volumes ?? []).find((v) => v.name === mount?.name);
    const key = mount ? path.slice(mount.mountPath.replace(/\/?$/, "/").length) : "";
    const cm = configMaps.find((m) => m.metadata?.name === volume?.configMap?.name);
    if (!cm || !(key in (cm.data ?? {})))
      problems.push(`${c.name}: --mesh-config ${path} is not a key of a shipped ConfigMap mounted there`);
  }
  return problems;
}
const configMaps = [];
for (const file of files)
  for (const d of yaml.loadAll(readFileSync(join(manifestDir, file), "utf8")))
    if (d?.kind === "ConfigMap") configMaps.push(d);
if (docsByKind.DaemonSet)
  expect("DaemonSet --mesh-config comes from a ConfigMap", meshConfigProblems(docsByKind.DaemonSet, configMaps), true);

// Negative cases, derived from the real DaemonSet so they stay relevant.
const ds = docsByKind.DaemonSet;
if (!ds) {
  expect("a DaemonSet exists to derive negative cases from", ["none found"], true);
} else {
  const noSelector = structuredClone(ds);
  delete noSelector.spec.selector;
  expect("DaemonSet without spec.selector", check(noSelector), false);
  const badPrivileged = structuredClone(ds);
  badPrivileged.spec.template.spec.containers[0].securityContext.privileged = "yes";
  expect('DaemonSet with privileged: "yes"', check(badPrivileged), false);
  const unmounted = structuredClone(ds);
  unmounted.spec.template.spec.containers[0].command.push("--mesh-config=/etc/nodemesh/elsewhere/mesh.yaml");
  unmounted.spec.template.spec.containers[0].command = unmounted.spec.template.spec.containers[0].command.filter(
    (a) => a !== "--mesh-config=/etc/nodemesh/mesh/mesh.yaml");
  expect("DaemonSet with an unmounted --mesh-config", meshConfigProblems(unmounted, configMaps), false);
  const noHostNetwork = structuredClone(ds);
  noHostNetwork.spec.template.spec.hostNetwork = false;
  expect("DaemonSet without hostNetwork", check(noHostNetwork), false);
  const hostDns = structuredClone(ds);
  delete hostDns.spec.template.spec.dnsPolicy;
  expect("DaemonSet with hostNetwork and the default dnsPolicy", check(hostDns), false);
  const writer = structuredClone(docsByKind.ClusterRole);
  writer.rules[0].verbs.push("delete");
  expect("ClusterRole with verb delete", check(writer), false);
  const secrets = structuredClone(docsByKind.ClusterRole);
  secrets.rules[0].resources.push("secrets");
  expect("ClusterRole that reads secrets", check(secrets), false);
  const noNodes = structuredClone(docsByKind.ClusterRole);
  noNodes.rules[0].resources = noNodes.rules[0].resources.filter((r) => r !== "nodes");
  expect("ClusterRole without nodes", check(noNodes), false);
  expect("unknown kind", check({ apiVersion: "v1", kind: "Sevice", metadata: { name: "x" } }), false);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
