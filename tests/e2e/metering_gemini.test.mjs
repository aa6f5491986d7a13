// Gemini traffic metered end to end, with a raw HTTP client (no SDK): generateContent and
// streamGenerateContent as SSE (CRLF-framed, as Google sends it) and as the default streamed
// JSON array, streamed function call arguments, and embeddings (which report no usage). The
// model comes from the URL; cached and thinking tokens are subsets of input and output.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';

import { llmLogFields, rawRequest, startStack } from './harness.mjs';
import { gemini } from './wire.mjs';

const MODEL = 'gemini-2.0-flash';
const MODEL_VERSION = 'gemini-2.0-flash-001';
const LABELS = { agent: 'e2e-agent', provider: 'gemini', model: MODEL };
const GEMINI_ROUTE = { name: 'gemini', prefix: '/v1beta/', provider: 'gemini' };
const BODY = JSON.stringify({
  contents: [{ role: 'user', parts: [{ text: 'Explain token caching in one paragraph.' }] }],
  generationConfig: { thinkingConfig: { thinkingBudget: 512 } },
});

// The key goes in x-goog-api-key, or with `keyInQuery` in the URL as ?key= (the REST examples'
// way), which must not reach the log either.
function post(stack, path, { keyInQuery = false } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (keyInQuery) {
    path += `${path.includes('?') ? '&' : '?'}key=${stack.geminiKey}`;
  } else {
    headers['x-goog-api-key'] = stack.geminiKey;
  }
  return rawRequest(`${stack.tokentap.url}${path}`, { headers, body: BODY });
}

test('generateContent: model from the URL, cached and thinking tokens', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE] });
  const response = gemini.response({
    modelVersion: MODEL_VERSION,
    text: 'Caching reuses a prefix the model has already read.',
    usage: gemini.usage(1200, 80, { cached: 1000, thoughts: 150 }),
  });
  stack.fake.reply({ json: response });

  const path = `/v1beta/models/${MODEL}:generateContent`;
  const answer = await post(stack, path);
  assert.equal(answer.status, 200);
  assert.deepEqual(JSON.parse(answer.body), response);

  const upstream = await stack.fake.request(0);
  assert.equal(upstream.path, path);
  assert.deepEqual(upstream.headerValues('x-goog-api-key'), [stack.geminiKey]);
  assert.equal(upstream.bodyText, BODY);
  const entry = await stack.accessLogOf(upstream);
  assert.equal(entry.route, 'gemini');
  assert.deepEqual(llmLogFields(entry), {
    provider: 'gemini',
    operation: 'generate_content',
    model: MODEL,
    response_model: MODEL_VERSION,
    stream: false,
    tokens: { input: 1200, output: 230, cache_read: 1000, cache_write: 0, reasoning: 150 },
    usage_source: 'reported',
    finish_reason: 'STOP',
    tool_calls: {},
    error_type: 'none',
  });

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [
    { ...LABELS, operation: 'generate_content', code: '200', error_type: 'none', value: 1 },
  ]);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 1200,
    output: 230,
    cache_read: 1000,
    reasoning: 150,
  });
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason', LABELS), { STOP: 1 });
});

test('streamGenerateContent?alt=sse: only the final chunk counts, exactly once', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE] });
  const chunks = gemini.chunks({
    modelVersion: MODEL_VERSION,
    text: 'Caching reuses a prefix the model has already read, so it is billed at a discount.',
    textPieces: 4,
    usage: gemini.usage(2048, 96, { cached: 1536, thoughts: 200 }),
  });
  stack.fake.reply({ sse: chunks.map((data) => ({ data })), eol: '\r\n' });

  const answer = await post(stack, `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, {
    keyInQuery: true,
  });
  const upstream = await stack.fake.request(0);
  assert.equal(
    upstream.path,
    `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse&key=${stack.geminiKey}`,
  );
  assert.ok(answer.body.equals(upstream.response.body), 'the stream reached the client as sent');
  assert.ok(answer.body.toString().includes('\r\n\r\n'));

  const entry = await stack.accessLogOf(upstream);
  assert.deepEqual(llmLogFields(entry), {
    provider: 'gemini',
    operation: 'generate_content',
    model: MODEL,
    response_model: MODEL_VERSION,
    stream: true,
    tokens: { input: 2048, output: 296, cache_read: 1536, cache_write: 0, reasoning: 200 },
    usage_source: 'reported',
    finish_reason: 'STOP',
    tool_calls: {},
    error_type: 'none',
  });
  assert.ok(entry.ttft_ms > 0 && entry.ttft_ms <= entry.duration_ms, `ttft_ms ${entry.ttft_ms}`);

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 2048,
    output: 296,
    cache_read: 1536,
    reasoning: 200,
  });
  assert.equal(m.histogram('llm_time_to_first_token_seconds', LABELS).count, 1);
  assert.equal(m.histogram('llm_request_duration_seconds', { ...LABELS, stream: 'true' }).count, 1);
  assert.equal(m.sum('tokentap_stream_usage_requested_total'), 0);
  assert.equal(m.sum('llm_parse_errors_total'), 0);
});

test('streamGenerateContent without alt=sse: a streamed JSON array', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE] });
  const chunks = gemini.chunks({
    modelVersion: MODEL_VERSION,
    text: 'Arrays stream too.',
    textPieces: 3,
    usage: gemini.usage(64, 12, { thoughts: 30 }),
  });
  // Google's framing: "[{...}\r\n,\r\n{...}]".
  const body = `[${chunks.map((c) => JSON.stringify(c)).join('\r\n,\r\n')}]`;
  stack.fake.reply({ headers: { 'content-type': 'application/json; charset=UTF-8' }, body });

  const answer = await post(stack, `/v1beta/models/${MODEL}:streamGenerateContent`);
  assert.equal(answer.body.toString(), body);

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.stream, true);
  assert.deepEqual(entry.tokens, {
    input: 64,
    output: 42,
    cache_read: 0,
    cache_write: 0,
    reasoning: 30,
  });
  assert.equal(entry.usage_source, 'reported');
  assert.equal(entry.finish_reason, 'STOP');
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 64,
    output: 42,
    reasoning: 30,
  });
});

test('streamed function call arguments: each call counted once, as a function call', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE] });
  // tests/golden/gemini: two get_weather calls, each streamed over several parts.
  const body = readFileSync(
    new URL('../golden/gemini/stream_sse_two_streamed_calls.response.sse', import.meta.url),
  );
  stack.fake.reply({ headers: { 'content-type': 'text/event-stream' }, body });

  const path = '/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse';
  const answer = await post(stack, path);
  assert.ok(answer.body.equals(body));
  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.deepEqual(entry.tool_calls, { get_weather: 2 });
  assert.ok(!('server_tool_calls' in entry));
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_tool_calls_total'), [
    { ...LABELS, model: 'gemini-3-pro-preview', tool: 'get_weather', kind: 'function', value: 2 },
  ]);
});

test('embedContent: no usage by design, counted as not_reported_by_api', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE] });
  const embedding = { embedding: { values: [0.0131, -0.0087, -0.0467, 0.0007] } };
  stack.fake.reply({ json: embedding });

  const answer = await post(stack, '/v1beta/models/gemini-embedding-001:embedContent');
  assert.deepEqual(JSON.parse(answer.body), embedding);
  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.operation, 'embed_content');
  assert.equal(entry.usage_source, 'missing');
  assert.equal(entry.usage_missing_reason, 'not_reported_by_api');
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_usage_missing_total'), [
    { ...LABELS, model: 'gemini-embedding-001', reason: 'not_reported_by_api', value: 1 },
  ]);
});
