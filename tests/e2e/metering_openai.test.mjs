// OpenAI traffic metered end to end: the llm_* series on /metrics and the access-log fields, with
// exact values, for plain and streamed chat completions, the stream_options.include_usage
// injection (and what the client must not notice of it), tool calls (functions and the
// Responses API's built-in tools), gzip and a broken body.
// The fake streams like the real API: the usage chunk only when the request asks for it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';

import { encodeSse } from './fake_provider.mjs';
import { gate, llmLogFields, rawRequest, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { ids, openai } from './wire.mjs';

const MODEL = 'gpt-4o-mini';
const SERVED_MODEL = 'gpt-4o-mini-2024-07-18';
const AGENT = 'e2e-agent';
const USAGE_OPTION = '"stream_options":{"include_usage":true}';

// The body tokentap forwards for a streaming request without stream_options.
function withUsageOption(body) {
  const text = body.toString();
  assert.ok(text.endsWith('}'), 'an SDK body is a JSON object');
  return `${text.slice(0, -1)},${USAGE_OPTION}}`;
}

function streamReply(options) {
  return (request) => ({
    headers: openai.headers(ids.openaiRequest()),
    sse: openai.streamFor(request.json(), options),
  });
}

function assertTtft(entry) {
  assert.equal(typeof entry.ttft_ms, 'number', 'ttft_ms in the log');
  assert.ok(
    entry.ttft_ms > 0 && entry.ttft_ms <= entry.duration_ms,
    `ttft_ms ${entry.ttft_ms} within duration_ms ${entry.duration_ms}`,
  );
}

test('chat completion: exact tokens by type, labelled with the requested model', async (t) => {
  const stack = await startStack(t);
  const completion = openai.completion({
    model: SERVED_MODEL,
    content: 'Paris.',
    usage: openai.usage(1536, 212, { cached: 1024, reasoning: 128 }),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: completion });

  const data = await stack.openai().chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Capital of France?' }],
  });
  assert.deepEqual(data, completion);

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.deepEqual(llmLogFields(entry), {
    provider: 'openai',
    operation: 'chat_completions',
    model: MODEL,
    response_model: SERVED_MODEL,
    stream: false,
    tokens: { input: 1536, output: 212, cache_read: 1024, cache_write: 0, reasoning: 128 },
    usage_source: 'reported',
    finish_reason: 'stop',
    tool_calls: {},
    error_type: 'none',
  });
  assert.ok(!('ttft_ms' in entry), 'no time to first token without a stream');
  assert.ok(!('provider_error' in entry));
  assert.ok(!('stream_usage_added' in entry));

  const m = await stack.waitForLlmRequests(1);
  const labels = { agent: AGENT, provider: 'openai', model: MODEL };
  assert.deepEqual(m.series('llm_requests_total'), [
    { ...labels, operation: 'chat_completions', code: '200', error_type: 'none', value: 1 },
  ]);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type'), {
    input: 1536,
    output: 212,
    cache_read: 1024,
    reasoning: 128,
  });
  assert.deepEqual(
    m.find('llm_tokens_total').map((s) => s.labels.model),
    [MODEL, MODEL, MODEL, MODEL],
    'the model label is the requested model, not the dated snapshot',
  );
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason', labels), { stop: 1 });
  const duration = m.histogram('llm_request_duration_seconds', {
    ...labels,
    operation: 'chat_completions',
    stream: 'false',
  });
  assert.equal(duration.count, 1);
  assert.ok(duration.sum > 0 && duration.sum * 1000 <= entry.duration_ms + 0.001);
  assert.equal(duration.buckets.at(-1).value, 1, 'the +Inf bucket holds the one observation');
  assert.equal(m.types.get('llm_request_duration_seconds'), 'histogram');
  assert.equal(m.sum('llm_time_to_first_token_seconds_count'), 0);
  assert.equal(m.sum('llm_usage_missing_total'), 0);
  assert.equal(m.sum('llm_parse_errors_total'), 0);
  assert.equal(m.sum('llm_tool_calls_total'), 0);
  assert.equal(m.sum('tokentap_stream_usage_requested_total'), 0);
  assert.deepEqual(m.series('llm_inflight_requests'), [
    { agent: AGENT, provider: 'openai', value: 0 },
  ]);
  assert.equal(
    m.value('llm_upstream_ratelimit_limit', { provider: 'openai', resource: 'requests' }),
    10000,
  );
  assert.equal(
    m.value('llm_upstream_ratelimit_remaining', { provider: 'openai', resource: 'requests' }),
    9999,
  );
  assert.equal(m.find('gen_ai_client_token_usage_count').length, 0, 'otel_semconv is off');
});

test('stream without stream_options: usage requested upstream, metered exactly', async (t) => {
  const stack = await startStack(t);
  const usage = openai.usage(57, 9, { cached: 32 });
  const text = 'Paris is the capital of France.';
  const id = ids.chatCompletion();
  let events = null;
  const held = gate();
  // The provider holds the stream after the first text chunk until the SDK has it: the last
  // content arrives later than the first, so time per output token is observed too.
  stack.fake.reply((request) => {
    events = openai.streamFor(request.json(), {
      model: SERVED_MODEL,
      text,
      textPieces: 4,
      usage,
      id,
    });
    return {
      headers: openai.headers(ids.openaiRequest()),
      sse: [...events.slice(0, 2), held.wait, ...events.slice(2)],
    };
  });

  const stream = await stack.openai().chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'Capital of France?' }],
    stream: true,
  });
  const received = [];
  await within(
    (async () => {
      for await (const chunk of stream) {
        received.push(chunk);
        if (received.length === 2) held.open();
      }
    })(),
    10_000,
    'the stream',
  );

  const sdkRequest = stack.sdkRequests[0];
  const upstream = await stack.fake.request(0);
  assert.equal(sdkRequest.json().stream_options, undefined);
  assert.equal(upstream.bodyText, withUsageOption(sdkRequest.body), 'only stream_options added');
  assert.deepEqual(upstream.headerValues('accept-encoding'), ['identity']);
  const usageChunk = events.at(-2).data;
  assert.deepEqual(usageChunk.choices, [], 'the provider sent its usage chunk');

  assert.ok(
    received.every((chunk) => chunk.choices.length > 0),
    'the usage-only chunk was taken out of what the SDK received',
  );
  assert.equal(received.length, events.length - 2, 'every other chunk arrived');
  assert.equal(received.map((c) => c.choices[0].delta.content ?? '').join(''), text);

  const entry = await stack.assertForwarded(sdkRequest, upstream, {
    body: Buffer.from(upstream.bodyText),
  });
  // The exact bytes the client got are the next test's business.
  assert.ok(
    entry.bytes_out <=
      upstream.response.body.length - Buffer.byteLength(encodeSse({ data: usageChunk })),
    `bytes_out ${entry.bytes_out}: the usage chunk was not sent on`,
  );
  assert.deepEqual(llmLogFields(entry), {
    provider: 'openai',
    operation: 'chat_completions',
    model: MODEL,
    response_model: SERVED_MODEL,
    stream: true,
    tokens: { input: 57, output: 9, cache_read: 32, cache_write: 0, reasoning: 0 },
    usage_source: 'reported',
    finish_reason: 'stop',
    tool_calls: {},
    error_type: 'none',
  });
  assert.equal(entry.stream_usage_added, true);
  assertTtft(entry);

  const m = await stack.waitForLlmRequests(1);
  const labels = { agent: AGENT, provider: 'openai', model: MODEL };
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', labels), {
    input: 57,
    output: 9,
    cache_read: 32,
  });
  assert.deepEqual(m.series('tokentap_stream_usage_requested_total'), [
    { provider: 'openai', value: 1 },
  ]);
  assert.equal(m.histogram('llm_time_to_first_token_seconds', labels).count, 1);
  assert.ok(
    Math.abs(m.histogram('llm_time_to_first_token_seconds', labels).sum * 1000 - entry.ttft_ms) <
      0.01,
    'the histogram observed the ttft_ms of the log',
  );
  assert.equal(m.histogram('llm_time_per_output_token_seconds', labels).count, 1);
  assert.equal(m.histogram('llm_request_duration_seconds', { ...labels, stream: 'true' }).count, 1);
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason', labels), { stop: 1 });
  assert.equal(m.sum('llm_usage_missing_total'), 0);
  assert.equal(m.sum('llm_parse_errors_total'), 0);
});

test('stream without stream_options: the client gets the bytes it gets directly', async (t) => {
  const stack = await startStack(t, { tls: false });
  const options = {
    model: SERVED_MODEL,
    text: 'Byte for byte.',
    usage: openai.usage(14, 5),
    id: ids.chatCompletion(),
  };
  stack.fake.reply(streamReply(options)).reply(streamReply(options));
  const request = {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.openaiKey}` },
    body: JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    }),
  };

  const direct = await rawRequest(`${stack.fake.url}/v1/chat/completions`, request);
  const proxied = await rawRequest(`${stack.tokentap.url}/v1/chat/completions`, request);

  assert.equal(
    direct.body.toString(),
    openai
      .streamFor({}, options)
      .map((e) => encodeSse(e))
      .join(''),
  );
  const upstream = await stack.fake.request(1);
  assert.equal(upstream.bodyText, withUsageOption(request.body));
  const entry = await stack.accessLogOf(upstream);
  assert.deepEqual(entry.tokens, {
    input: 14,
    output: 5,
    cache_read: 0,
    cache_write: 0,
    reasoning: 0,
  });
  assert.equal(entry.usage_source, 'reported');
  assert.equal(proxied.status, 200);
  assert.equal(proxied.headers['content-type'], direct.headers['content-type']);
  // OpenAI puts "usage":null into every chunk of a stream that asked for usage; a client that
  // did not ask must not see those either.
  assert.equal(
    proxied.body.toString(),
    direct.body.toString(),
    'the stream through tokentap differs from the stream the provider sends this request',
  );
  assert.equal(entry.bytes_out, direct.body.length);
});

test('include_stream_usage: false forwards the stream as is, usage counted missing', async (t) => {
  const stack = await startStack(t, { config: { metering: { include_stream_usage: false } } });
  const options = { model: SERVED_MODEL, text: 'No usage here.', usage: openai.usage(21, 6) };
  const chunks = openai.chunks({ ...options, usage: null });
  stack.fake.reply(streamReply(options));

  const stream = await stack.openai().chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  const received = [];
  for await (const chunk of stream) received.push(chunk);
  assert.deepEqual(
    received.map(({ id, ...rest }) => rest),
    chunks.map(({ id, ...rest }) => rest),
  );

  const upstream = await stack.fake.request(0);
  assert.match(upstream.headers['accept-encoding'], /\bgzip\b/, "the client's Accept-Encoding");
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.bytes_out, upstream.response.body.length);
  // Never a silent zero: without usage the request is billed estimates from its text.
  assert.equal(entry.usage_source, 'estimated');
  assert.equal(entry.usage_missing_reason, 'not_reported');
  assert.ok(entry.tokens.input > 0 && entry.tokens.output > 0, JSON.stringify(entry.tokens));
  assert.deepEqual(entry.estimated_tokens, {
    input: entry.tokens.input,
    output: entry.tokens.output,
  });
  assert.ok(entry.cost_usd > 0);
  assert.ok(!('stream_usage_added' in entry));
  assertTtft(entry);

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_usage_missing_total'), [
    { agent: AGENT, provider: 'openai', model: MODEL, reason: 'not_reported', value: 1 },
  ]);
  assert.equal(m.sum('llm_tokens_total'), entry.tokens.input + entry.tokens.output);
  assert.equal(m.sum('llm_estimated_tokens_total'), entry.tokens.input + entry.tokens.output);
  assert.equal(m.sum('tokentap_stream_usage_requested_total'), 0);
  assert.equal(m.sum('llm_time_to_first_token_seconds_count'), 1);
});

test("a client's own stream_options are left alone, and so is its usage chunk", async (t) => {
  const stack = await startStack(t);
  const options = {
    model: SERVED_MODEL,
    text: 'With usage.',
    usage: openai.usage(33, 4),
    id: ids.chatCompletion(),
  };
  const withUsage = openai.chunks(options);
  stack.fake.reply(streamReply(options)).reply(streamReply(options));
  const client = stack.openai();
  const params = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true };

  const first = [];
  for await (const c of await client.chat.completions.create({
    ...params,
    stream_options: { include_usage: true },
  })) {
    first.push(c);
  }
  assert.deepEqual(first, withUsage, 'the SDK got the usage chunk it asked for');
  const second = [];
  for await (const c of await client.chat.completions.create({
    ...params,
    stream_options: { include_usage: false },
  })) {
    second.push(c);
  }
  assert.deepEqual(second, openai.chunks({ ...options, usage: null }));

  for (const index of [0, 1]) {
    const upstream = await stack.fake.request(index);
    const entry = await stack.assertForwarded(stack.sdkRequests[index], upstream);
    assert.equal(entry.bytes_out, upstream.response.body.length);
    assert.ok(!('stream_usage_added' in entry));
  }
  const m = await stack.waitForLlmRequests(2);
  // The stream without usage is billed estimates; the rest is the reported usage.
  const tokens = m.byLabel('llm_tokens_total', 'type');
  const estimated = m.byLabel('llm_estimated_tokens_total', 'type');
  assert.deepEqual(
    { input: tokens.input - estimated.input, output: tokens.output - estimated.output },
    { input: 33, output: 4 },
  );
  assert.deepEqual(m.byLabel('llm_usage_missing_total', 'reason'), { not_reported: 1 });
  assert.equal(m.sum('tokentap_stream_usage_requested_total'), 0);
});

test('tool calls, plain and streamed, counted per tool name', async (t) => {
  const stack = await startStack(t);
  const weather = (city) => ({
    id: ids.toolCall(),
    name: 'get_weather',
    arguments: JSON.stringify({ city }),
  });
  const clock = { id: ids.toolCall(), name: 'get_time', arguments: '{"tz":"Europe/Oslo"}' };
  const completion = openai.completion({
    model: SERVED_MODEL,
    toolCalls: [weather('Oslo'), clock],
    usage: openai.usage(90, 30),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: completion });
  const streamOptions = {
    model: 'gpt-4o-2024-08-06',
    toolCalls: [weather('Paris'), weather('Rome'), clock],
    argumentPieces: 3,
    usage: openai.usage(120, 45),
  };
  stack.fake.reply(streamReply(streamOptions));
  const client = stack.openai();
  const messages = [{ role: 'user', content: 'Weather and time?' }];

  assert.deepEqual(await client.chat.completions.create({ model: MODEL, messages }), completion);
  const runner = client.chat.completions.stream({ model: 'gpt-4o', messages });
  const final = await within(runner.finalChatCompletion(), 10_000, 'the streamed tool calls');
  assert.deepEqual(
    final.choices[0].message.tool_calls.map((c) => c.function.name),
    ['get_weather', 'get_weather', 'get_time'],
  );

  const plainEntry = await stack.accessLogOf(await stack.fake.request(0));
  assert.deepEqual(plainEntry.tool_calls, { get_weather: 1, get_time: 1 });
  assert.equal(plainEntry.finish_reason, 'tool_calls');
  const streamEntry = await stack.accessLogOf(await stack.fake.request(1));
  assert.deepEqual(streamEntry.tool_calls, { get_weather: 2, get_time: 1 });
  assert.equal(streamEntry.finish_reason, 'tool_calls');
  assert.deepEqual(streamEntry.tokens, {
    input: 120,
    output: 45,
    cache_read: 0,
    cache_write: 0,
    reasoning: 0,
  });

  const m = await stack.waitForLlmRequests(2);
  const labels = { agent: AGENT, provider: 'openai' };
  assert.deepEqual(m.byLabel('llm_tool_calls_total', 'tool', { ...labels, model: MODEL }), {
    get_weather: 1,
    get_time: 1,
  });
  assert.deepEqual(m.byLabel('llm_tool_calls_total', 'tool', { ...labels, model: 'gpt-4o' }), {
    get_weather: 2,
    get_time: 1,
  });
  assert.equal(m.sum('llm_tool_calls_total', { kind: 'function' }), 5);
  assert.equal(m.sum('llm_tool_calls_total'), 5, 'no call of another kind');
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'model', { reason: 'tool_calls' }), {
    [MODEL]: 1,
    'gpt-4o': 1,
  });
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', { model: 'gpt-4o' }), {
    input: 120,
    output: 45,
  });
});

// Recorded Responses API bodies (tests/golden/openai), replayed by the fake as the API sent them.
function golden(name) {
  return readFileSync(new URL(`../golden/openai/${name}`, import.meta.url));
}

test('Responses API: built-in tools are server calls, finish reasons say tool_calls', async (t) => {
  const stack = await startStack(t);
  // web_search (run by OpenAI), a message, then a get_weather function call for the client.
  stack.fake.reply({
    headers: { 'content-type': 'text/event-stream; charset=utf-8' },
    body: golden('responses_stream_tools.response.sse'),
  });
  // file_search, code_interpreter and an MCP tool, all run by OpenAI, then the answer.
  stack.fake.reply({
    headers: { 'content-type': 'application/json' },
    body: golden('responses_nonstream_hosted_tools.response.json'),
  });
  const client = stack.openai();

  const events = [];
  const stream = await client.responses.create({
    model: 'gpt-4.1',
    input: "What's the weather in Paris today? Then call get_weather.",
    tools: [{ type: 'web_search_preview' }, { type: 'function', name: 'get_weather' }],
    stream: true,
  });
  for await (const event of stream) events.push(event.type);
  assert.equal(events.at(-1), 'response.completed');
  const answer = await client.responses.create({ model: 'gpt-5', input: 'Roll back checkout?' });
  assert.equal(answer.status, 'completed');

  const streamed = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(streamed.finish_reason, 'tool_calls');
  assert.deepEqual(streamed.tool_calls, { web_search: 1, get_weather: 1 });
  assert.deepEqual(streamed.server_tool_calls, { web_search: 1 });
  const plain = await stack.accessLogOf(await stack.fake.request(1));
  assert.equal(plain.finish_reason, 'stop');
  const hosted = { file_search: 1, code_interpreter: 1, get_incidents: 1 };
  assert.deepEqual(plain.tool_calls, hosted);
  assert.deepEqual(plain.server_tool_calls, hosted);

  const m = await stack.waitForLlmRequests(2);
  const sortRows = (rows) => rows.sort((a, b) => a.tool.localeCompare(b.tool));
  const labels = { agent: AGENT, provider: 'openai', model: 'gpt-4.1' };
  assert.deepEqual(
    sortRows(m.series('llm_tool_calls_total', { model: 'gpt-4.1' })),
    sortRows([
      { ...labels, tool: 'get_weather', kind: 'function', value: 1 },
      { ...labels, tool: 'web_search', kind: 'server', value: 1 },
    ]),
  );
  const gpt5Server = { model: 'gpt-5', kind: 'server' };
  assert.deepEqual(m.byLabel('llm_tool_calls_total', 'tool', gpt5Server), hosted);
  assert.equal(m.sum('llm_tool_calls_total', { model: 'gpt-5' }), 3);
  assert.deepEqual(m.byLabel('llm_finish_reasons_total', 'reason'), { tool_calls: 1, stop: 1 });
  assert.match(m.text, /llm_tool_calls_total\{[^}]*kind="server"[^}]*\} 1/);
});

test('gzip response: the client gets the compressed bytes, the meter exact counts', async (t) => {
  const stack = await startStack(t);
  const completion = openai.completion({
    model: SERVED_MODEL,
    content: 'Compressed metering counts every token. '.repeat(50),
    usage: openai.usage(4321, 876, { cached: 4096, reasoning: 64 }),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: completion, gzip: true });

  const response = await rawRequest(`${stack.tokentap.url}/v1/chat/completions`, {
    headers: {
      'content-type': 'application/json',
      'accept-encoding': 'gzip',
      authorization: `Bearer ${stack.openaiKey}`,
    },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Say it.' }] }),
  });

  const upstream = await stack.fake.request(0);
  assert.equal(upstream.response.contentEncoding, 'gzip');
  assert.equal(response.status, 200);
  assert.equal(response.headers['content-encoding'], 'gzip');
  assert.ok(response.body.equals(upstream.response.body), 'compressed bytes unchanged');
  const entry = await stack.accessLogOf(upstream);
  assert.deepEqual(entry.tokens, {
    input: 4321,
    output: 876,
    cache_read: 4096,
    cache_write: 0,
    reasoning: 64,
  });
  assert.equal(entry.usage_source, 'reported');
  assert.equal(entry.response_model, SERVED_MODEL);

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_tokens_total', 'type', { model: MODEL }), {
    input: 4321,
    output: 876,
    cache_read: 4096,
    reasoning: 64,
  });
  assert.equal(m.sum('llm_parse_errors_total'), 0);
});

test('a truncated JSON body is forwarded byte for byte and counted as unreadable', async (t) => {
  const stack = await startStack(t);
  const whole = JSON.stringify(
    openai.completion({ model: SERVED_MODEL, content: 'Cut short.', usage: openai.usage(40, 8) }),
  );
  const cut = whole.slice(0, whole.indexOf('"completion_tokens"') + 10);
  stack.fake.reply({
    headers: { ...openai.headers(ids.openaiRequest()), 'content-type': 'application/json' },
    body: cut,
  });

  const response = await rawRequest(`${stack.tokentap.url}/v1/chat/completions`, {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.openaiKey}` },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), cut);

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  // Billed, not free: the input is estimated from the request text.
  assert.equal(entry.usage_source, 'estimated');
  assert.equal(entry.usage_missing_reason, 'parse_error');
  assert.ok(entry.tokens.input > 0);
  assert.ok(entry.parse_errors >= 1, `parse_errors ${entry.parse_errors}`);
  assert.equal(entry.error_type, 'none');

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.byLabel('llm_parse_errors_total', 'reason', { provider: 'openai' }), {
    truncated: 1,
  });
  assert.deepEqual(m.series('llm_usage_missing_total'), [
    { agent: AGENT, provider: 'openai', model: MODEL, reason: 'parse_error', value: 1 },
  ]);
  assert.equal(m.sum('llm_tokens_total'), entry.tokens.input + entry.tokens.output);
  assert.deepEqual(m.series('llm_requests_total'), [
    {
      agent: AGENT,
      provider: 'openai',
      model: MODEL,
      operation: 'chat_completions',
      code: '200',
      error_type: 'none',
      value: 1,
    },
  ]);
});

// The SDK asks for a service tier; the response says which one served the request, and that
// is what is billed: gpt-4o-mini's priority line, and flex at half the standard price.
test('priority and flex service tiers are priced from their own price lines', async (t) => {
  const stack = await startStack(t);
  for (let i = 0; i < 2; i++) {
    stack.fake.reply((request) => ({
      headers: openai.headers(ids.openaiRequest()),
      json: {
        ...openai.completion({
          model: SERVED_MODEL,
          content: 'Tiered.',
          usage: openai.usage(1000, 100),
        }),
        service_tier: request.json().service_tier,
      },
    }));
  }
  const client = stack.openai();
  const messages = [{ role: 'user', content: 'hi' }];
  const priority = await client.chat.completions.create({
    model: MODEL,
    messages,
    service_tier: 'priority',
  });
  assert.equal(priority.service_tier, 'priority');
  const flex = await client.chat.completions.create({ model: MODEL, messages, service_tier: 'flex' });
  assert.equal(flex.service_tier, 'flex');

  const expected = [
    // 1000 x 0.25 + 100 x 1 USD per million tokens.
    { service_tier: 'priority', pricing_rule: 'gpt-4o-mini:priority', cost_usd: 0.00035 },
    // (1000 x 0.15 + 100 x 0.6) / 2.
    { service_tier: 'flex', pricing_rule: 'gpt-4o-mini:flex', cost_usd: 0.000105 },
  ];
  for (const [i, want] of expected.entries()) {
    const entry = await stack.accessLogOf(await stack.fake.request(i));
    assert.equal(entry.service_tier, want.service_tier);
    assert.equal(entry.pricing_rule, want.pricing_rule);
    assert.equal(entry.priced_as, 'gpt-4o-mini');
    assert.ok(Math.abs(entry.cost_usd - want.cost_usd) < 1e-12, `${entry.cost_usd}`);
    assert.equal(entry.usage_source, 'reported');
  }
  const m = await stack.waitForLlmRequests(2);
  assert.ok(Math.abs(m.sum('llm_cost_usd_total') - 0.000455) < 1e-12);
  assert.equal(m.sum('llm_unpriced_requests_total'), 0);
});
