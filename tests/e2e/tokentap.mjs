// Runs the real tokentap binary ($TOKENTAP_BIN) on a config written to a temp file, with both
// listeners on 127.0.0.1:0. start() resolves once the "listening" event on stderr names the
// ports. Every stdout line (the access log) and stderr line (diagnostics) is kept; tests wait
// for access-log lines and scrape /metrics through the helpers here.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 20_000;
const WAIT_TIMEOUT_MS = 10_000;

export function tokentapBin() {
  if (process.env.TOKENTAP_BIN) return process.env.TOKENTAP_BIN;
  const fallback = resolve(
    dirname(fileURLToPath(import.meta.url)),
    '../../build/default/proxy/tokentap',
  );
  if (existsSync(fallback)) return fallback;
  throw new Error('set TOKENTAP_BIN to the tokentap binary (ctest does this)');
}

// Rejects with a message naming `what` if `promise` has not settled within `ms`.
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// One sample of the Prometheus text exposition: name, labels (object), value (number).
function parseLabels(text) {
  const labels = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;
  let m;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) {
    labels[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
  }
  if (re.lastIndex !== text.length && text.trim() !== '') {
    throw new Error(`unparseable label set {${text}}`);
  }
  return labels;
}

export function parseMetrics(text) {
  const samples = [];
  const types = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      types.set(name, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    samples.push({ name: m[1], labels: parseLabels(m[2] ?? ''), value: Number(m[3]) });
  }
  return new Metrics(text, samples, types);
}

function matches(labels, wanted) {
  return Object.entries(wanted).every(([k, v]) => labels[k] === v);
}

// Parsed /metrics. Label filters match a subset of a sample's labels.
export class Metrics {
  constructor(text, samples, types) {
    this.text = text;
    this.samples = samples;
    this.types = types; // metric family name -> counter | gauge | histogram | summary
  }

  find(name, labels = {}) {
    return this.samples.filter((s) => s.name === name && matches(s.labels, labels));
  }

  // The value of the one sample of `name` whose labels include `labels`; 0 when there is none
  // (a counter that was never incremented is not exported). Throws if several match.
  value(name, labels = {}) {
    const found = this.find(name, labels);
    if (found.length > 1) {
      throw new Error(
        `${name}${JSON.stringify(labels)} matches ${found.length} samples; narrow the labels`,
      );
    }
    return found.length ? found[0].value : 0;
  }

  sum(name, labels = {}) {
    return this.find(name, labels).reduce((total, s) => total + s.value, 0);
  }

  // Every sample of `name` whose labels include `labels`, as { ...labels, value } rows.
  series(name, labels = {}) {
    return this.find(name, labels).map((s) => ({ ...s.labels, value: s.value }));
  }

  // { value of label `by`: sample value } over the samples of `name` whose labels include
  // `labels`, for asserting a whole breakdown at once (e.g. tokens by type). Throws if two
  // samples share a value of `by`.
  byLabel(name, by, labels = {}) {
    const out = {};
    for (const s of this.find(name, labels)) {
      const key = s.labels[by];
      if (key in out) throw new Error(`${name}${JSON.stringify(labels)}: two samples ${by}=${key}`);
      out[key] = s.value;
    }
    return out;
  }

  // For histograms: { count, sum, buckets: [{ le, value }] } of the series with these labels.
  histogram(name, labels = {}) {
    return {
      count: this.value(`${name}_count`, labels),
      sum: this.value(`${name}_sum`, labels),
      buckets: this.find(`${name}_bucket`, labels)
        .map((s) => ({
          le: Number(s.labels.le === '+Inf' ? Infinity : s.labels.le),
          value: s.value,
        }))
        .sort((a, b) => a.le - b.le),
    };
  }
}

// The config every e2e test starts from: `/v1/messages` to the fake as Anthropic, everything
// else to the fake as OpenAI. `extraRoutes` come first; each goes to the fake (with its CA)
// unless it names its own upstream. `overrides` is merged on top (objects deeply, anything else
// replaced).
export function tokentapConfig({ upstreamUrl, caFile = null, extraRoutes = [], overrides = {} }) {
  const tls = caFile ? { tls: { ca_file: caFile } } : {};
  const config = {
    listen: '127.0.0.1:0',
    admin_listen: '127.0.0.1:0',
    workers: 1,
    routes: [
      ...extraRoutes.map((route) => ({ upstream: upstreamUrl, ...tls, ...route })),
      {
        name: 'anthropic',
        prefix: '/v1/messages',
        upstream: upstreamUrl,
        provider: 'anthropic',
        ...tls,
      },
      { name: 'openai', prefix: '/', upstream: upstreamUrl, provider: 'openai', ...tls },
    ],
    timeouts: {
      connect: '5s',
      first_byte: '20s',
      idle: '20s',
      downstream_header: '10s',
      drain: '10s',
    },
    log: { access: 'stdout', level: 'info' },
  };
  return merge(config, overrides);
}

function merge(base, overrides) {
  for (const [key, value] of Object.entries(overrides)) {
    const isObject = (v) => v && typeof v === 'object' && !Array.isArray(v);
    base[key] = isObject(value) && isObject(base[key]) ? merge(base[key], value) : value;
  }
  return base;
}

export class Tokentap {
  #proc;
  #dir;
  #lineWaiters = [];
  #exit;
  #streamsDone;

  constructor() {
    this.stdoutLines = [];
    this.stderrLines = [];
    this.exitCode = null;
    this.exitSignal = null;
  }

  // `config` is an object (JSON is YAML); `env` is added to the inherited environment.
  static async start(config, { env = {} } = {}) {
    const tt = new Tokentap();
    tt.#dir = mkdtempSync(join(tmpdir(), 'tokentap-e2e-'));
    const configFile = join(tt.#dir, 'tokentap.yaml');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    tt.#proc = spawn(tokentapBin(), ['--config', configFile], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    tt.#exit = once(tt.#proc, 'exit').then(([code, signal]) => {
      tt.exitCode = code;
      tt.exitSignal = signal;
      tt.#wake();
    });
    const stdoutDone = tt.#collect(tt.#proc.stdout, tt.stdoutLines);
    const stderrDone = tt.#collect(tt.#proc.stderr, tt.stderrLines);
    tt.#streamsDone = Promise.all([stdoutDone, stderrDone]);
    const listening = await within(
      tt.#waitFor(
        () =>
          tt.diagnostics().find((e) => e.msg === 'listening') ??
          (tt.exitCode !== null || tt.exitSignal !== null ? 'exited' : undefined),
      ),
      START_TIMEOUT_MS,
      'tokentap to start listening',
    ).catch((err) => {
      tt.#proc.kill('SIGKILL');
      throw err;
    });
    if (listening === 'exited') {
      await tt.#streamsDone;
      throw new Error(
        `tokentap exited (code ${tt.exitCode}, signal ${tt.exitSignal}) before listening:\n` +
          tt.stderrLines.join('\n'),
      );
    }
    tt.port = Number(listening.listen.split(':').pop());
    tt.adminPort = Number(listening.admin_listen.split(':').pop());
    tt.url = `http://127.0.0.1:${tt.port}`;
    tt.adminUrl = `http://127.0.0.1:${tt.adminPort}`;
    return tt;
  }

  #collect(stream, lines) {
    const reader = createInterface({ input: stream, crlfDelay: Infinity });
    reader.on('line', (line) => {
      lines.push(line);
      this.#wake();
    });
    return once(reader, 'close');
  }

  #wake() {
    this.#lineWaiters = this.#lineWaiters.filter((check) => !check());
  }

  // Resolves with the first truthy value of `probe()`, re-evaluated whenever a line arrives;
  // rejects if `probe` throws (e.g. a stdout line that is not JSON).
  #waitFor(probe) {
    return new Promise((resolve, reject) => {
      const check = () => {
        try {
          const value = probe();
          if (value) resolve(value);
          return Boolean(value);
        } catch (err) {
          reject(err);
          return true;
        }
      };
      if (!check()) this.#lineWaiters.push(check);
    });
  }

  get stdout() {
    return this.stdoutLines.join('\n');
  }

  get stderr() {
    return this.stderrLines.join('\n');
  }

  // The access log: one parsed JSON object per stdout line.
  accessLog() {
    return this.stdoutLines.map((line) => JSON.parse(line));
  }

  // stderr lines that are JSON objects (sanitizer reports, if any, are not).
  diagnostics() {
    const out = [];
    for (const line of this.stderrLines) {
      try {
        const value = JSON.parse(line);
        if (value && typeof value === 'object') out.push(value);
      } catch {
        // not a tokentap event line
      }
    }
    return out;
  }

  // Resolves with the first access-log entry for which `predicate` is true, as soon as it is written.
  waitForAccessLog(predicate, what = 'an access log line', timeoutMs = WAIT_TIMEOUT_MS) {
    return within(
      this.#waitFor(() => this.accessLog().find(predicate)),
      timeoutMs,
      what,
    );
  }

  async scrapeMetrics() {
    const response = await fetch(`${this.adminUrl}/metrics`);
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
    return parseMetrics(await response.text());
  }

  // Scrapes /metrics until `predicate(metrics)` holds and resolves with those metrics. The access
  // log line of a request is written just before its counters move, so a test that has seen the
  // line polls here briefly rather than assuming the scrape that follows sees the counters.
  async waitForMetrics(predicate, what = 'metrics', timeoutMs = WAIT_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const metrics = await this.scrapeMetrics();
      if (predicate(metrics)) return metrics;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; last scrape:\n${metrics.text}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  get running() {
    return this.exitCode === null && this.exitSignal === null;
  }

  // SIGTERM, then resolves with { code, signal } once the process exited and its output is read.
  async stop() {
    if (this.running) this.#proc.kill('SIGTERM');
    try {
      await within(this.#exit, STOP_TIMEOUT_MS, 'tokentap to exit after SIGTERM');
    } catch (err) {
      this.#proc.kill('SIGKILL');
      await this.#exit;
      throw err;
    } finally {
      await this.#streamsDone;
      rmSync(this.#dir, { recursive: true, force: true });
    }
    return { code: this.exitCode, signal: this.exitSignal };
  }
}
