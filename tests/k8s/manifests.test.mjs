// Renders every kustomization under k8s/ with `kubectl kustomize` and validates each rendered
// object offline against the Kubernetes and Prometheus Operator schemas (npm kubernetes-models
// and @kubernetes-models/prometheus-operator, pinned in package-lock.json). Then checks what a
// schema cannot: that the sidecar, its config, the Dockerfile, the PodMonitor, the rules and the
// dashboard agree with each other. Needs KUBECTL and PROMTOOL (default: on PATH) and TOKENTAP_BIN.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const k8s = path.join(root, "k8s");
const kubectl = process.env.KUBECTL || "kubectl";
const KUSTOMIZATIONS = ["base", "monitoring"];

// apiVersion group -> the package that models it.
const MODEL_PACKAGES = {
  "": "kubernetes-models",
  apps: "kubernetes-models/apps",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator/monitoring.coreos.com",
};

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const pkg = MODEL_PACKAGES[group];
  assert.ok(pkg, `no schema for apiVersion ${apiVersion} (kind ${kind})`);
  const module = await import(`${pkg}/${version}/${kind}`);
  assert.ok(module[kind], `no model for ${apiVersion} ${kind}`);
  return module[kind];
}

function render(dir) {
  const out = execFileSync(kubectl, ["kustomize", path.join(k8s, dir)], { encoding: "utf8" });
  const docs = YAML.parseAllDocuments(out);
  for (const doc of docs) assert.deepEqual(doc.errors, [], `${dir}: rendered YAML does not parse`);
  return docs.map((d) => d.toJS()).filter(Boolean);
}

const rendered = Object.fromEntries(KUSTOMIZATIONS.map((dir) => [dir, render(dir)]));
const all = Object.values(rendered).flat();
const find = (kind, name) => {
  const matches = all.filter((o) => o.kind === kind && (!name || o.metadata.name.startsWith(name)));
  assert.equal(matches.length, 1, `expected one ${kind} ${name ?? ""}, found ${matches.length}`);
  return matches[0];
};

function seconds(duration) {
  const m = /^(\d+)(ms|s|m|h)$/.exec(duration);
  assert.ok(m, `unsupported duration ${duration}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

const deployment = find("Deployment");
const podSpec = deployment.spec.template.spec;
const podLabels = deployment.spec.template.metadata.labels;
const sidecar = (podSpec.initContainers ?? []).find((c) => c.name === "tokentap");
const agents = podSpec.containers;
const configMap = find("ConfigMap", "tokentap-config");
const config = YAML.parse(configMap.data["tokentap.yaml"]);
const portOf = (hostPort) => Number(hostPort.split(":").pop());

test("every kustomization renders, and every object is valid against its schema", async () => {
  let count = 0;
  for (const [dir, objects] of Object.entries(rendered)) {
    assert.ok(objects.length > 0, `${dir} rendered nothing`);
    for (const object of objects) {
      const Model = await modelFor(object.apiVersion, object.kind);
      const where = `${dir}: ${object.kind} ${object.metadata?.name}`;
      assert.doesNotThrow(() => new Model(object).validate(), where);
      count++;
    }
  }
  assert.ok(count >= 5, `only ${count} objects rendered`);
});

test("the schemas reject what is wrong (the validator is live)", async () => {
  const Deployment = await modelFor("apps/v1", "Deployment");
  const broken = structuredClone(deployment);
  broken.spec.template.spec.initContainers[0].resources.limits.memory = "lots";
  assert.throws(() => new Deployment(broken).validate(), /quantity/);
  const PodMonitor = await modelFor("monitoring.coreos.com/v1", "PodMonitor");
  const monitor = structuredClone(find("PodMonitor"));
  monitor.spec.podMetricsEndpoints[0].interval = "30 seconds";
  assert.throws(() => new PodMonitor(monitor).validate(), /pattern/);
});

test("tokentap is a native sidecar with probes, resources and a locked-down security context", () => {
  assert.ok(sidecar, "no init container named tokentap");
  assert.equal(sidecar.restartPolicy, "Always");
  const admin = sidecar.ports.find((p) => p.name === "admin");
  assert.equal(admin?.containerPort, portOf(config.admin_listen));
  for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    assert.equal(sidecar[probe]?.httpGet?.port, "admin", probe);
  }
  assert.equal(sidecar.readinessProbe.httpGet.path, "/readyz");
  assert.equal(sidecar.livenessProbe.httpGet.path, "/healthz");
  assert.ok(sidecar.resources.requests.cpu && sidecar.resources.requests.memory);
  assert.ok(sidecar.resources.limits.memory);
  assert.ok(podSpec.securityContext.runAsNonRoot);
  for (const c of [sidecar, ...agents]) {
    assert.equal(c.securityContext.runAsNonRoot, true, c.name);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, c.name);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"], c.name);
  }
});

test("the pod runs as the image's user", () => {
  const dockerfile = fs.readFileSync(path.join(root, "Dockerfile"), "utf8");
  const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
  assert.ok(user, "the Dockerfile's USER is not numeric uid:gid");
  assert.equal(podSpec.securityContext.runAsUser, Number(user[1]));
  assert.equal(podSpec.securityContext.runAsGroup, Number(user[2]));
});

test("the agent is pointed at the sidecar and named from a pod label", () => {
  const listen = config.listen;
  assert.match(listen, /^127\.0\.0\.1:\d+$/);
  for (const agent of agents) {
    const env = Object.fromEntries(agent.env.map((e) => [e.name, e.value]));
    assert.equal(env.OPENAI_BASE_URL, `http://${listen}/v1`, agent.name);
    assert.equal(env.ANTHROPIC_BASE_URL, `http://${listen}`, agent.name);
  }
  const agentVar = sidecar.env.find((e) => e.name === "TOKENTAP_AGENT");
  const label = /^metadata\.labels\['(.+)'\]$/.exec(agentVar?.valueFrom?.fieldRef?.fieldPath ?? "");
  assert.ok(label, "TOKENTAP_AGENT does not come from a pod label");
  assert.ok(podLabels[label[1]], `the pod has no label ${label[1]}`);
});

test("the grace period covers the drain timeout", () => {
  const drain = seconds(config.timeouts.drain);
  assert.ok(podSpec.terminationGracePeriodSeconds >= drain + 10,
            `terminationGracePeriodSeconds ${podSpec.terminationGracePeriodSeconds} vs drain ${drain}s`);
});

test("the config in the ConfigMap is valid for the real binary, with its price files", () => {
  const mount = sidecar.volumeMounts.find((m) => m.name === "tokentap-config");
  const volume = podSpec.volumes.find((v) => v.name === "tokentap-config");
  assert.equal(volume.configMap.name, configMap.metadata.name);
  assert.deepEqual(sidecar.args, ["--config", `${mount.mountPath}/tokentap.yaml`]);
  for (const file of config.pricing?.files ?? []) assert.ok(configMap.data[file], file);
  const bin = process.env.TOKENTAP_BIN;
  assert.ok(bin, "set TOKENTAP_BIN (ctest does)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokentap-k8s-"));
  try {
    for (const [name, text] of Object.entries(configMap.data)) {
      fs.writeFileSync(path.join(dir, name), text);
    }
    // The Secret is created out of band (k8s/README.md): stand in for its mounted file.
    const tokenFile = path.join(dir, "admin-token");
    fs.writeFileSync(tokenFile, "0123456789abcdef0123456789abcdef\n");
    const yaml = configMap.data["tokentap.yaml"];
    assert.ok(yaml.includes(config.admin.token_file));
    fs.writeFileSync(path.join(dir, "tokentap.yaml"), yaml.replace(config.admin.token_file, tokenFile));
    const out = execFileSync(bin, ["--check-config", "--config", path.join(dir, "tokentap.yaml")],
                             { encoding: "utf8" });
    assert.match(out, /ok/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the admin token comes from a Secret mounted into the sidecar alone, created as documented", () => {
  const tokenFile = config.admin?.token_file;
  assert.ok(tokenFile, "tokentap.yaml sets no admin.token_file: /v1/* would be loopback only");
  const mount = sidecar.volumeMounts.find((m) => tokenFile.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `no volume of the sidecar is mounted where ${tokenFile} is`);
  assert.equal(mount.readOnly, true);
  const volume = podSpec.volumes.find((v) => v.name === mount.name);
  assert.ok(volume.secret, `${mount.name} is not a Secret volume`);
  assert.notEqual(volume.secret.optional, true, "a missing Secret must stop the pod, not the token");
  const file = tokenFile.slice(mount.mountPath.length + 1);
  const item = volume.secret.items.find((i) => i.path === file);
  assert.ok(item, `the Secret volume has no item at ${file}`);
  for (const c of agents) {
    assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === mount.name), `${c.name} mounts the token`);
  }
  const readme = fs.readFileSync(path.join(k8s, "README.md"), "utf8");
  assert.ok(readme.includes(`create secret generic ${volume.secret.secretName} --from-literal=${item.key}=`),
            "k8s/README.md does not create the Secret the Deployment mounts");
});

test("the PodMonitor selects the sidecar's pods and port and names the job tokentap", () => {
  const monitor = find("PodMonitor");
  for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
    assert.equal(podLabels[key], value, `pod label ${key}`);
  }
  const [endpoint] = monitor.spec.podMetricsEndpoints;
  assert.ok(sidecar.ports.some((p) => p.name === endpoint.port));
  // /metrics is open: the scrape carries no credentials (the token guards /v1/* only).
  assert.equal(endpoint.path, "/metrics");
  assert.ok(!endpoint.authorization && !endpoint.bearerTokenSecret && !endpoint.basicAuth);
  assert.ok(endpoint.relabelings.some((r) => r.targetLabel === "job" && r.replacement === "tokentap"));
});

test("the plain scrape config selects the same pods and port, and names the job tokentap", () => {
  const scrape = YAML.parse(fs.readFileSync(path.join(k8s, "prometheus", "scrape-config.yml"), "utf8"));
  const [job] = scrape.scrape_configs;
  assert.equal(job.job_name, "tokentap");
  const keeps = job.relabel_configs.filter((r) => r.action === "keep");
  const monitor = find("PodMonitor");
  for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
    const meta = `__meta_kubernetes_pod_label_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    assert.ok(keeps.some((r) => r.source_labels[0] === meta && r.regex === value), meta);
  }
  assert.ok(keeps.some((r) => r.source_labels[0] === "__meta_kubernetes_pod_container_port_name" &&
                              r.regex === monitor.spec.podMetricsEndpoints[0].port));
  for (const label of ["namespace", "pod", "container"]) {
    assert.ok(job.relabel_configs.some((r) => r.target_label === label), label);
  }
});

test("promtool accepts the plain scrape config and its rule_files", () => {
  // Debian's Prometheus is built without Kubernetes discovery: the check swaps the
  // kubernetes_sd_configs block for a static target and checks everything else.
  const scrape = YAML.parse(fs.readFileSync(path.join(k8s, "prometheus", "scrape-config.yml"), "utf8"));
  for (const job of scrape.scrape_configs) {
    assert.ok(job.kubernetes_sd_configs, job.job_name);
    delete job.kubernetes_sd_configs;
    job.static_configs = [{ targets: ["127.0.0.1:9901"] }];
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokentap-scrape-"));
  try {
    for (const name of ["tokentap.rules.yml", "tokentap.slo.rules.yml"]) {
      fs.copyFileSync(path.join(k8s, "rules", name), path.join(dir, name));
    }
    fs.writeFileSync(path.join(dir, "prometheus.yml"), YAML.stringify(scrape));
    const out = execFileSync(process.env.PROMTOOL || "promtool",
                             ["check", "config", path.join(dir, "prometheus.yml")], { encoding: "utf8" });
    assert.match(out, /SUCCESS/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const ruleFiles = ["tokentap.rules.yml", "tokentap.slo.rules.yml"].map((name) =>
  YAML.parse(fs.readFileSync(path.join(k8s, "rules", name), "utf8")));
const ruleTests = ["tokentap.rules.test.yml", "tokentap.slo.rules.test.yml", "tokentap.anomaly.rules.test.yml"]
  .map((name) => YAML.parse(fs.readFileSync(path.join(k8s, "rules", name), "utf8")));

test("the PrometheusRule is exactly the plain rules files", () => {
  assert.deepEqual(find("PrometheusRule").spec, { groups: ruleFiles.flatMap((r) => r.groups) });
});

test("every alert has a severity, summary, description and runbook, and unit tests that fire and stay silent", () => {
  const alerts = ruleFiles.flatMap((r) => r.groups).flatMap((g) => g.rules).filter((r) => r.alert);
  assert.ok(alerts.length >= 14, `${alerts.length} alerts`);
  const cases = ruleTests.flatMap((f) => f.tests).flatMap((t) => t.alert_rule_test ?? []);
  for (const alert of alerts) {
    // page and ticket: the SLO burn alerts' severities (k8s/rules/slos.json).
    assert.match(alert.labels?.severity ?? "", /^(info|warning|critical|page|ticket)$/, alert.alert);
    for (const key of ["summary", "description", "runbook"]) {
      assert.ok(alert.annotations?.[key]?.trim(), `${alert.alert}: no ${key}`);
    }
    const mine = cases.filter((c) => c.alertname === alert.alert);
    assert.ok(mine.some((c) => c.exp_alerts?.length > 0), `${alert.alert} is never tested firing`);
    assert.ok(mine.some((c) => c.exp_alerts?.length === 0), `${alert.alert} is never tested silent`);
  }
});

test("the dashboard ConfigMap carries the dashboard, with agent/provider/model variables and queries on every panel", () => {
  const file = fs.readFileSync(path.join(k8s, "monitoring", "tokentap-dashboard.json"), "utf8");
  const cm = find("ConfigMap", "tokentap-dashboard");
  assert.equal(cm.metadata.labels.grafana_dashboard, "1");
  assert.equal(cm.data["tokentap-dashboard.json"], file);
  const dashboard = JSON.parse(file);
  const variables = dashboard.templating.list.map((v) => v.name);
  for (const name of ["datasource", "agent", "provider", "model"]) assert.ok(variables.includes(name), name);
  const panels = dashboard.panels.filter((p) => p.type !== "row");
  assert.ok(panels.length >= 20);
  const ids = new Set();
  for (const panel of panels) {
    assert.ok(!ids.has(panel.id), `duplicate panel id ${panel.id}`);
    ids.add(panel.id);
    assert.equal(panel.datasource.uid, "${datasource}", panel.title);
    assert.ok(panel.targets.length > 0 && panel.targets.every((t) => t.expr?.trim()), panel.title);
  }
  const cells = new Map();  // no two panels (rows included) share a grid cell
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    assert.ok(x >= 0 && x + w <= 24, `${panel.title} is off the grid`);
    for (let i = x; i < x + w; i++) {
      for (let j = y; j < y + h; j++) {
        const other = cells.get(`${i},${j}`);
        assert.ok(!other, `${panel.title} overlaps ${other}`);
        cells.set(`${i},${j}`, panel.title);
      }
    }
  }
  const text = panels.map((p) => p.title.toLowerCase()).join("\n");
  for (const topic of ["requests per second", "error", "duration", "time to first token",
                       "tokens per second by type", "cost per hour", "cost per request",
                       "cost per conversation", "tool calls", "tool-result error", "tool duration p95",
                       "tool results by status", "tool-loop repeats", "finish reasons",
                       "rate-limit headroom", "sidecar cpu", "sidecar memory", "circuit breaker"]) {
    assert.ok(text.includes(topic), `no panel about ${topic}`);
  }
});

test("the tracing example adds a valid OpenTelemetry Collector the sidecar exports to", async () => {
  // Rendered on its own: it repeats k8s/base, which the checks above find exactly once.
  const objects = render("examples/tracing");
  for (const object of objects) {
    const Model = await modelFor(object.apiVersion, object.kind);
    assert.doesNotThrow(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`);
  }
  const one = (kind, name) => {
    const found = objects.filter((o) => o.kind === kind && o.metadata.name.startsWith(name));
    assert.equal(found.length, 1, `${kind} ${name}`);
    return found[0];
  };
  const service = one("Service", "otel-collector");
  const collector = one("Deployment", "otel-collector");
  const container = collector.spec.template.spec.containers[0];
  assert.match(container.image, /^otel\/opentelemetry-collector(-contrib)?:\d+\.\d+\.\d+$/);
  assert.deepEqual(service.spec.selector, collector.spec.template.metadata.labels);
  const port = service.spec.ports.find((p) => p.name === "otlp-http");
  assert.equal(container.ports.find((p) => p.name === port.targetPort)?.containerPort, 4318);
  const collectorConfig = one("ConfigMap", "otel-collector-config");
  const pipeline = YAML.parse(collectorConfig.data["collector-config.yaml"]);
  assert.equal(pipeline.receivers.otlp.protocols.http.endpoint, `0.0.0.0:${port.port}`);
  assert.deepEqual(pipeline.service.pipelines.traces.receivers, ["otlp"]);
  const volume = collector.spec.template.spec.volumes.find((v) => v.name === "config");
  assert.equal(volume.configMap.name, collectorConfig.metadata.name);

  const agent = one("Deployment", "example-agent");
  const tokentap = agent.spec.template.spec.initContainers.find((c) => c.name === "tokentap");
  const env = Object.fromEntries(tokentap.env.map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.ok(env.TOKENTAP_AGENT, "the base's variables are kept");
  assert.equal(env.OTEL_TRACES_EXPORTER, "otlp");
  assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, `http://${service.metadata.name}:${port.port}`);
  assert.equal(env.K8S_POD_NAME.fieldRef.fieldPath, "metadata.name");
  // The real binary accepts the sidecar's variables with the base config.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokentap-k8s-"));
  try {
    for (const [name, text] of Object.entries(configMap.data)) {
      fs.writeFileSync(path.join(dir, name), text);
    }
    const tokenFile = path.join(dir, "admin-token");
    fs.writeFileSync(tokenFile, "0123456789abcdef0123456789abcdef\n");
    const yaml = configMap.data["tokentap.yaml"].replace(config.admin.token_file, tokenFile);
    fs.writeFileSync(path.join(dir, "tokentap.yaml"), yaml);
    const values = Object.fromEntries(
      tokentap.env.map((e) => [e.name, e.value ?? "from-the-downward-api"]),
    );
    const out = execFileSync(
      process.env.TOKENTAP_BIN,
      ["--check-config", "--config", path.join(dir, "tokentap.yaml")],
      { encoding: "utf8", env: { ...process.env, ...values } },
    );
    assert.match(out, /ok/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
