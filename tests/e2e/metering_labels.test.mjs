// Label handling on the llm_* metrics: the per-label cardinality cap (metrics.max_values_per_label)
// and the optional OpenTelemetry GenAI names (metrics.otel_semconv).
import assert from 'node:assert/strict';
import test from 'node:test';

import { collect, rawRequest, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { ids, openai } from './wire.mjs';

const MODEL = 'gpt-4o-mini';
const SERVED_MODEL = 'gpt-4o-mini-2024-07-18';
const CHAT = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };

function reply(usage, finishReason = 'stop') {
  const completion = openai.completion({ model: SERVED_MODEL, content: 'ok', usage });
  completion.choices[0].finish_reason = finishReason;
  return { headers: openai.headers(ids.openaiRequest()), json: completion };
}

test('past max_values_per_label distinct agents, the rest are counted as "other"', async (t) => {
  const stack = await startStack(t, { config: { metrics: { max_values_per_label: 3 } } });
  const agents = ['planner', 'coder', 'reviewer', 'tester', 'deployer', 'oncall'];
  for (const [i] of agents.entries()) stack.fake.reply(reply(openai.usage(10 + i, 1)));

  for (const agent of agents) {
    await stack.openai({ defaultHeaders: { 'x-agent-id': agent } }).chat.completions.create(CHAT);
  }

  for (const [i, agent] of agents.entries()) {
    const upstream = await stack.fake.request(i);
    assert.deepEqual(upstream.headerValues('x-agent-id'), [], 'the agent header stays here');
    const entry = await stack.accessLogOf(upstream);
    assert.equal(entry.agent, agent, 'the log keeps the real agent');
  }
  const m = await stack.waitForLlmRequests(agents.length);
  assert.deepEqual(m.byLabel('llm_requests_total', 'agent'), {
    planner: 1,
    coder: 1,
    reviewer: 1,
    other: 3,
  });
  assert.equal(m.sum('llm_requests_total'), 6);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'agent', { type: 'input' }), {
    planner: 10,
    coder: 11,
    reviewer: 12,
    other: 13 + 14 + 15,
  });
  assert.deepEqual(m.byLabel('llm_inflight_requests', 'agent'), {
    planner: 0,
    coder: 0,
    reviewer: 0,
    other: 0,
  });
  assert.equal(m.histogram('llm_request_duration_seconds', { agent: 'other' }).count, 3);
});

// llm_usage_missing_total{reason} and llm_parse_errors_total{reason} have fixed vocabularies;
// the finish reasons a provider invents must not use up their label values.
test('finish reasons do not push fixed reason values into "other"', async (t) => {
  const stack = await startStack(t, { config: { metrics: { max_values_per_label: 2 } } });
  stack.fake.reply(reply(openai.usage(5, 1), 'stop'));
  stack.fake.reply(reply(openai.usage(5, 64), 'length'));
  stack.fake.reply(reply(openai.usage(5, 1), 'content_filter'));
  stack.fake.reply({
    headers: { 'content-type': 'application/json' },
    body: '{"id":"chatcmpl-x",',
  });
  const client = stack.openai();
  for (let i = 0; i < 3; i++) await client.chat.completions.create(CHAT);
  const broken = await rawRequest(`${stack.tokentap.url}/v1/chat/completions`, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.openaiKey}` },
    body: JSON.stringify(CHAT),
  });
  assert.equal(broken.body.toString(), '{"id":"chatcmpl-x",');

  const m = await stack.waitForLlmRequests(4);
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason'), {
    stop: 1,
    length: 1,
    other: 1,
  });
  assert.deepEqual(m.byLabel('llm_parse_errors_total', 'reason'), { truncated: 1 });
  assert.deepEqual(m.byLabel('llm_usage_missing_total', 'reason'), { parse_error: 1 });
});

test('otel_semconv: the GenAI histograms, their attribute names and counts', async (t) => {
  const stack = await startStack(t, { config: { metrics: { otel_semconv: true } } });
  stack.fake.reply(reply(openai.usage(100, 20)));
  stack.fake.reply((request) => ({
    headers: openai.headers(ids.openaiRequest()),
    sse: openai.streamFor(request.json(), {
      model: SERVED_MODEL,
      text: 'Streamed.',
      usage: openai.usage(50, 10),
    }),
  }));
  stack.fake.reply({
    status: 429,
    headers: openai.headers(ids.openaiRequest()),
    json: openai.rateLimitError('Rate limit reached.'),
  });
  const client = stack.openai();

  await client.chat.completions.create(CHAT);
  await within(
    collect(await client.chat.completions.create({ ...CHAT, stream: true })),
    10_000,
    'the stream',
  );
  await assert.rejects(client.chat.completions.create(CHAT), { status: 429 });

  const m = await stack.waitForLlmRequests(3);
  const attributes = {
    gen_ai_operation_name: 'chat',
    gen_ai_system: 'openai',
    gen_ai_request_model: MODEL,
  };
  for (const name of [
    'gen_ai_client_token_usage',
    'gen_ai_client_operation_duration_seconds',
    'gen_ai_server_time_to_first_token_seconds',
  ]) {
    assert.equal(m.types.get(name), 'histogram', name);
  }
  const tokens = (type) =>
    m.histogram('gen_ai_client_token_usage', {
      ...attributes,
      gen_ai_response_model: SERVED_MODEL,
      gen_ai_token_type: type,
    });
  assert.deepEqual([tokens('input').count, tokens('input').sum], [2, 150]);
  assert.deepEqual([tokens('output').count, tokens('output').sum], [2, 30]);
  assert.deepEqual(
    m
      .find('gen_ai_client_token_usage_count')
      .map((s) => s.labels.gen_ai_token_type)
      .sort(),
    ['input', 'output'],
  );
  assert.deepEqual(
    m
      .find('gen_ai_client_operation_duration_seconds_count', attributes)
      .map((s) => [s.labels.error_type, s.value])
      .sort(),
    [
      ['', 2],
      ['rate_limited', 1],
    ],
  );
  assert.equal(m.histogram('gen_ai_server_time_to_first_token_seconds', attributes).count, 1);
  assert.equal(m.sum('gen_ai_server_time_to_first_token_seconds_count'), 1);
  // The llm_* names are still there.
  assert.equal(m.sum('llm_requests_total'), 3);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type'), { input: 150, output: 30 });
});
