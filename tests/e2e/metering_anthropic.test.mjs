// Anthropic Messages traffic metered end to end: input counts cache reads and writes on top of
// input_tokens, the cache subsets, stop reasons, tool_use blocks, tool_result errors in the
// newest user turn, and a gzip-compressed stream.
import assert from 'node:assert/strict';
import test from 'node:test';

import { collect, llmLogFields, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids } from './wire.mjs';

const MODEL = 'claude-opus-4-1';
const SERVED_MODEL = 'claude-opus-4-1-20250805';
const AGENT = 'e2e-agent';
const LABELS = { agent: AGENT, provider: 'anthropic', model: MODEL };

const TOOLS = [
  {
    name: 'get_weather',
    description: 'Current weather for a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
  {
    name: 'get_time',
    description: 'Local time in a time zone',
    input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] },
  },
];

test('message with cache reads and writes, and tool results of the newest user turn', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: SERVED_MODEL,
    content: [{ type: 'text', text: 'The weather service is down; it is 14:02 in Oslo.' }],
    usage: anthropic.usage(25, 40, { cacheCreation: 1200, cacheRead: 3000 }),
  });
  stack.fake.reply({ headers: anthropic.headers(ids.anthropicRequest()), json: message });
  const [first, retry, clock] = [ids.toolUse(), ids.toolUse(), ids.toolUse()];

  const data = await stack.anthropic().messages.create({
    model: MODEL,
    max_tokens: 512,
    tools: TOOLS,
    messages: [
      { role: 'user', content: 'Weather and time in Oslo?' },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: first, name: 'get_weather', input: { city: 'Oslo' } }],
      },
      {
        // An older turn: its failed result was counted when it was the newest one.
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: first, content: 'timeout', is_error: true }],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me try again and check the time.' },
          { type: 'tool_use', id: retry, name: 'get_weather', input: { city: 'Oslo' } },
          { type: 'tool_use', id: clock, name: 'get_time', input: { tz: 'Europe/Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: retry, content: 'service down', is_error: true },
          { type: 'tool_result', tool_use_id: clock, content: [{ type: 'text', text: '14:02' }] },
          { type: 'text', text: 'Summarise.' },
        ],
      },
    ],
  });
  assert.deepEqual(data, message);

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.deepEqual(llmLogFields(entry), {
    provider: 'anthropic',
    operation: 'messages',
    model: MODEL,
    response_model: SERVED_MODEL,
    stream: false,
    tokens: {
      input: 25 + 3000 + 1200,
      output: 40,
      cache_read: 3000,
      cache_write: 1200,
      reasoning: 0,
    },
    usage_source: 'reported',
    finish_reason: 'end_turn',
    tool_calls: {},
    error_type: 'none',
  });

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [
    { ...LABELS, operation: 'messages', code: '200', error_type: 'none', value: 1 },
  ]);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 4225,
    output: 40,
    cache_read: 3000,
    cache_write: 1200,
  });
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason', LABELS), { end_turn: 1 });
  assert.deepEqual(
    m.series('llm_tool_results_total').sort((a, b) => a.tool.localeCompare(b.tool)),
    [
      { agent: AGENT, tool: 'get_time', status: 'success', value: 1 },
      { agent: AGENT, tool: 'get_weather', status: 'error', value: 1 },
    ],
  );
  assert.equal(m.sum('llm_tool_calls_total'), 0, 'tool_use blocks in the request are not calls');
  assert.equal(
    m.histogram('llm_request_duration_seconds', {
      ...LABELS,
      operation: 'messages',
      stream: 'false',
    }).count,
    1,
  );
  assert.equal(
    m.value('llm_upstream_ratelimit_limit', { provider: 'anthropic', resource: 'requests' }),
    4000,
  );
  assert.equal(
    m.value('llm_upstream_ratelimit_remaining', { provider: 'anthropic', resource: 'requests' }),
    3999,
  );
});

test('streamed tool use with cache tokens: exact counts, stop reason, ttft', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: SERVED_MODEL,
    content: [
      { type: 'text', text: 'Checking the weather in Oslo.' },
      { type: 'tool_use', id: ids.toolUse(), name: 'get_weather', input: { city: 'Oslo' } },
    ],
    usage: anthropic.usage(310, 87, { cacheCreation: 2048, cacheRead: 4096 }),
  });
  const events = anthropic.streamEvents(message, { textPieces: 4, jsonPieces: 3 });
  stack.fake.reply({ headers: anthropic.headers(ids.anthropicRequest()), sse: events });

  const stream = stack.anthropic().messages.stream({
    model: MODEL,
    max_tokens: 1024,
    tools: TOOLS,
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
  });
  const final = await within(stream.finalMessage(), 10_000, 'the streamed message');
  assert.equal(final.stop_reason, 'tool_use');
  assert.deepEqual(final.usage.cache_read_input_tokens, 4096);

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.bytes_out, upstream.response.body.length);
  assert.deepEqual(llmLogFields(entry), {
    provider: 'anthropic',
    operation: 'messages',
    model: MODEL,
    response_model: SERVED_MODEL,
    stream: true,
    tokens: {
      input: 310 + 4096 + 2048,
      output: 87,
      cache_read: 4096,
      cache_write: 2048,
      reasoning: 0,
    },
    usage_source: 'reported',
    finish_reason: 'tool_use',
    tool_calls: { get_weather: 1 },
    error_type: 'none',
  });
  assert.ok(entry.ttft_ms > 0 && entry.ttft_ms <= entry.duration_ms, `ttft_ms ${entry.ttft_ms}`);

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 6454,
    output: 87,
    cache_read: 4096,
    cache_write: 2048,
  });
  assert.deepEqual(m.series('llm_tool_calls_total'), [
    { ...LABELS, tool: 'get_weather', kind: 'function', value: 1 },
  ]);
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason', LABELS), { tool_use: 1 });
  assert.equal(m.histogram('llm_time_to_first_token_seconds', LABELS).count, 1);
  assert.equal(m.histogram('llm_request_duration_seconds', { ...LABELS, stream: 'true' }).count, 1);
  assert.equal(m.sum('llm_usage_missing_total'), 0);
  assert.equal(m.sum('tokentap_stream_usage_requested_total'), 0, 'nothing to add for Anthropic');
});

test('gzip-compressed stream is metered exactly and reaches the SDK compressed', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: SERVED_MODEL,
    content: [{ type: 'text', text: 'Every compressed token is counted. '.repeat(30) }],
    usage: anthropic.usage(12, 512, { cacheRead: 900 }),
  });
  const events = anthropic.streamEvents(message, { textPieces: 12 });
  stack.fake.reply({ headers: anthropic.headers(ids.anthropicRequest()), sse: events, gzip: true });

  const stream = await stack.anthropic().messages.create({
    model: MODEL,
    max_tokens: 1024,
    messages: [{ role: 'user', content: 'Say it thirty times.' }],
    stream: true,
  });
  assert.deepEqual(
    await within(collect(stream), 10_000, 'the compressed stream'),
    events.filter((e) => e.event !== 'ping').map((e) => e.data),
  );

  const upstream = await stack.fake.request(0);
  assert.equal(upstream.response.contentEncoding, 'gzip');
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.bytes_out, upstream.response.body.length, 'compressed bytes passed on');
  assert.deepEqual(entry.tokens, {
    input: 912,
    output: 512,
    cache_read: 900,
    cache_write: 0,
    reasoning: 0,
  });
  assert.equal(entry.usage_source, 'reported');
  assert.equal(entry.finish_reason, 'end_turn');
  assert.ok(entry.ttft_ms > 0, `ttft_ms ${entry.ttft_ms}`);

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', LABELS), {
    input: 912,
    output: 512,
    cache_read: 900,
  });
  assert.equal(m.sum('llm_parse_errors_total'), 0);
});
