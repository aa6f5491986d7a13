// One test's world: a fake provider, a tokentap in front of it, canary API keys and SDK clients
// pointed at tokentap by base URL only. startStack() registers a teardown on the test that stops
// tokentap with SIGTERM and fails the test unless it exited 0, no sanitizer spoke, and neither
// canary key appears in tokentap's stdout, stderr or /metrics.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { testCertificates } from './certs.mjs';
import { FakeProvider } from './fake_provider.mjs';
import { Tokentap, tokentapConfig } from './tokentap.mjs';

const ACCESS_LOG_KEYS = [
  'time',
  'request_id',
  'upstream_request_id',
  'agent',
  'method',
  'path',
  'route',
  'status',
  'upstream_status',
  'error_type',
  'duration_ms',
  'bytes_in',
  'bytes_out',
  'key_id',
];
// The access-log fields metering adds, always present on a request to an LLM route, and the
// request's one error_type.
const LLM_LOG_KEYS = [
  'provider',
  'operation',
  'model',
  'response_model',
  'stream',
  'tokens',
  'usage_source',
  'finish_reason',
  'tool_calls',
  'error_type',
];
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'];

// Headers that are about one hop, or that tokentap owns, and so may legitimately differ between
// what the SDK sent and what the provider received.
const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'host',
  'transfer-encoding',
  'te',
  'upgrade',
  'proxy-connection',
  'content-length',
]);
// tokentap's own headers (the agent and session names of the default config): it reads them and
// keeps them from the provider.
const TOKENTAP_HEADERS = new Set(['x-agent-id', 'x-session-id']);

// sha256 prefix that tokentap logs as key_id instead of the key.
export function keyId(key) {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function bodyBytes(body) {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return Buffer.from(body);
  throw new Error(`cannot record an SDK request body of type ${body?.constructor?.name}`);
}

// One request as an SDK handed it to fetch.
export class SdkRequest {
  constructor(url, init) {
    this.url = new URL(url);
    this.method = init.method ?? 'GET';
    this.headers = new Headers(init.headers);
    this.body = bodyBytes(init.body);
  }

  get path() {
    return this.url.pathname + this.url.search;
  }

  json() {
    return JSON.parse(this.body.toString('utf8'));
  }
}

export class Stack {
  #finished = false;

  constructor(fake, tokentap) {
    this.fake = fake;
    this.tokentap = tokentap;
    this.openaiKey = `sk-proj-canary${randomBytes(20).toString('hex')}`;
    this.anthropicKey = `sk-ant-api03-canary${randomBytes(20).toString('hex')}`;
    this.geminiKey = `AIzaSy${randomBytes(20).toString('hex')}`;
    // Pieces of the keys that must not show up either (a truncated or partly masked key is
    // still a leak); the prefixes are public.
    this.secrets = [this.openaiKey, this.anthropicKey, this.geminiKey].flatMap((key) => {
      const random = key.slice(-40);
      return [key, random.slice(0, 12), random.slice(14, 26), random.slice(-12)];
    });
    this.sdkRequests = [];
    // Passes every call to the global fetch untouched; it only keeps a copy of what the SDK sent,
    // so a test can compare it with what reached the provider.
    this.fetch = (url, init = {}) => {
      this.sdkRequests.push(new SdkRequest(url, init));
      return globalThis.fetch(url, init);
    };
  }

  openai(options = {}) {
    return new OpenAI({
      baseURL: `${this.tokentap.url}/v1`,
      apiKey: this.openaiKey,
      maxRetries: 0,
      fetch: this.fetch,
      ...options,
    });
  }

  anthropic(options = {}) {
    return new Anthropic({
      baseURL: this.tokentap.url,
      apiKey: this.anthropicKey,
      maxRetries: 0,
      fetch: this.fetch,
      ...options,
    });
  }

  // Asserts the provider got exactly what the SDK sent: method, path, body bytes (or `body`, for
  // the one sanctioned rewrite), the API key, and every end-to-end header with its value but
  // tokentap's own (x-agent-id, x-session-id), which must not reach it.
  // Returns the access log entry of that request.
  async assertForwarded(sdkRequest, upstreamRequest, { body = sdkRequest.body } = {}) {
    assert.equal(upstreamRequest.method, sdkRequest.method);
    assert.equal(upstreamRequest.path, sdkRequest.path);
    assert.ok(
      upstreamRequest.body.equals(body),
      `request body changed on the way:\n expected: ${body}\n got:      ${upstreamRequest.body}`,
    );
    for (const [name, value] of sdkRequest.headers) {
      if (HOP_HEADERS.has(name)) continue;
      if (TOKENTAP_HEADERS.has(name)) {
        assert.deepEqual(upstreamRequest.headerValues(name), [], `${name} reached the provider`);
        continue;
      }
      assert.deepEqual(upstreamRequest.headerValues(name), [value], `header ${name}`);
    }
    const entry = await this.accessLogOf(upstreamRequest);
    assert.equal(entry.bytes_in, sdkRequest.body.length);
    return entry;
  }

  // Asserts the SDK sent `key` (as x-api-key or a bearer token, whichever this SDK version uses)
  // and the provider received that header unchanged.
  assertKeyForwarded(sdkRequest, upstreamRequest, key) {
    const names = ['authorization', 'x-api-key'].filter((n) =>
      sdkRequest.headers.get(n)?.includes(key),
    );
    assert.ok(names.length > 0, 'the SDK sent no API key header');
    for (const name of names) {
      assert.deepEqual(upstreamRequest.headerValues(name), [sdkRequest.headers.get(name)], name);
    }
  }

  // The access log line of a request the provider received, found by the x-request-id tokentap
  // sent; the k-th request carrying one id (a client may reuse its own) is the k-th such line.
  async accessLogOf(upstreamRequest) {
    const id = upstreamRequest.headers['x-request-id'];
    assert.ok(id, 'tokentap sent no x-request-id upstream');
    const k = this.fake.requests
      .filter((r) => r.headers['x-request-id'] === id)
      .indexOf(upstreamRequest);
    return this.tokentap.waitForAccessLog(
      (e, i, log) =>
        e.request_id === id && log.slice(0, i).filter((p) => p.request_id === id).length === k,
      `access log line ${k} of request id ${id}`,
    );
  }

  // Scrapes /metrics until `count` requests are in llm_requests_total and none is in flight,
  // and resolves with that scrape.
  waitForLlmRequests(count) {
    return this.tokentap.waitForMetrics(
      (m) => m.sum('llm_requests_total') === count && m.sum('llm_inflight_requests') === 0,
      `${count} requests in llm_requests_total and none in flight`,
    );
  }

  // Stops tokentap and the fake provider and asserts the end-of-test invariants. Runs at most once;
  // registered as the test's teardown, and may be called earlier by a test that wants to assert
  // on the final output.
  async finish() {
    if (this.#finished) return;
    this.#finished = true;
    try {
      const metricsText = this.tokentap.running ? (await this.tokentap.scrapeMetrics()).text : '';
      // The fake goes first: a stream a failed test left open then ends now instead of holding
      // tokentap's drain for its full timeout.
      await this.fake.close();
      const { code, signal } = await this.tokentap.stop();
      const stderr = this.tokentap.stderr;
      for (const marker of SANITIZER_MARKERS) {
        assert.ok(!stderr.includes(marker), `sanitizer report in tokentap's stderr:\n${stderr}`);
      }
      assert.equal(signal, null, `tokentap died of ${signal}:\n${stderr}`);
      assert.equal(code, 0, `tokentap exited ${code} after SIGTERM:\n${stderr}`);
      for (const secret of this.secrets) {
        assert.ok(!this.tokentap.stdout.includes(secret), 'API key leaked into the access log');
        assert.ok(!stderr.includes(secret), 'API key leaked into stderr');
        assert.ok(!metricsText.includes(secret), 'API key leaked into /metrics');
      }
      for (const entry of this.tokentap.accessLog()) {
        const missing = ACCESS_LOG_KEYS.filter((key) => !(key in entry));
        assert.deepEqual(
          missing,
          [],
          `access log line without ${missing}: ${JSON.stringify(entry)}`,
        );
      }
      const events = this.tokentap.diagnostics();
      assert.equal(events.length, this.tokentap.stderrLines.length, `non-JSON stderr:\n${stderr}`);
      assert.ok(
        events.every((e) => e.time && e.level && e.msg),
        `stderr events lack time/level/msg`,
      );
      assert.equal(events.at(-1).msg, 'stopped');
    } finally {
      if (this.tokentap.running) await this.tokentap.stop().catch(() => {});
      await this.fake.close();
    }
  }
}

// tls: serve the fake over HTTPS with the test CA's certificate, or plain HTTP. trustCa: give
// tokentap the test CA as the routes' tls.ca_file. env: added to tokentap's environment
// (TOKENTAP_AGENT is "e2e-agent" unless given). routes: extra routes, see tokentapConfig().
// config: merged into the tokentap config.
export async function startStack(
  t,
  { tls = true, trustCa = true, env = {}, routes = [], config = {} } = {},
) {
  const certs = tls ? await testCertificates() : null;
  const fake = await FakeProvider.start({ tls: certs });
  let tokentap;
  try {
    const caFile = certs && trustCa ? certs.caFile : null;
    tokentap = await Tokentap.start(
      tokentapConfig({ upstreamUrl: fake.url, caFile, extraRoutes: routes, overrides: config }),
      { env: { TOKENTAP_AGENT: 'e2e-agent', ...env } },
    );
  } catch (err) {
    await fake.close();
    throw err;
  }
  const stack = new Stack(fake, tokentap);
  t.after(() => stack.finish());
  return stack;
}

// The metering fields of an access-log entry (those every LLM request has), for comparing whole.
export function llmLogFields(entry) {
  const missing = LLM_LOG_KEYS.filter((key) => !(key in entry));
  assert.deepEqual(missing, [], `access log line without ${missing}: ${JSON.stringify(entry)}`);
  return Object.fromEntries(LLM_LOG_KEYS.map((key) => [key, entry[key]]));
}

// One plain-HTTP request on a fresh connection, for a client that must see the raw response:
// no SDK, no decompression. Resolves with { status, headers, body (a Buffer) }.
export function rawRequest(url, { method = 'POST', headers = {}, body = '' } = {}) {
  const payload = Buffer.from(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        agent: false,
        headers: { 'content-length': String(payload.length), ...headers },
      },
      (res) => {
        const parts = [];
        res.on('data', (part) => parts.push(part));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

// Collects every item of an async iterable (an SDK stream) into an array.
export async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

// A promise with its resolve function, for holding a fake stream until the test lets it go on.
export function gate() {
  let open;
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open, wait: () => promise };
}
