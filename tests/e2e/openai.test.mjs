// The official OpenAI SDK through tokentap: chat completions with and without streaming and tool
// calls. Each test checks both directions: the SDK gets exactly what the provider sent, and the
// provider gets exactly what the SDK sent (body bytes, API key, headers).
import assert from 'node:assert/strict';
import test from 'node:test';

import { encodeSse } from './fake_provider.mjs';
import { gate, keyId, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { ids, openai } from './wire.mjs';

const MODEL = 'gpt-4o-mini';
const SERVED_MODEL = 'gpt-4o-mini-2024-07-18';

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};

test('chat completion round-trips byte for byte, with the provider request id', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.openaiRequest();
  const completion = openai.completion({
    model: SERVED_MODEL,
    content: 'Paris — «la Ville Lumière» 🌍.',
    usage: openai.usage(31, 12),
  });
  stack.fake.reply({ headers: openai.headers(requestId), json: completion });

  const { data, response, request_id } = await stack
    .openai()
    .chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'Answer in one sentence.' },
        { role: 'user', content: 'Quelle est la capitale de la France ? 🇫🇷' },
      ],
      temperature: 0.2,
      max_completion_tokens: 64,
    })
    .withResponse();

  assert.deepEqual(data, completion);
  assert.equal(request_id, requestId);
  assert.equal(data._request_id, requestId);
  assert.equal(response.headers.get('x-request-id'), requestId, "one x-request-id, the provider's");
  assert.equal(response.headers.get('openai-processing-ms'), '212');

  const upstream = await stack.fake.request(0);
  assert.equal(upstream.headers.authorization, `Bearer ${stack.openaiKey}`);
  stack.assertKeyForwarded(stack.sdkRequests[0], upstream, stack.openaiKey);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.method, 'POST');
  assert.equal(entry.path, '/v1/chat/completions');
  assert.equal(entry.route, 'openai');
  assert.equal(entry.status, 200);
  assert.equal(entry.upstream_status, 200);
  assert.equal(entry.error_type, 'none');
  assert.equal(entry.agent, 'e2e-agent');
  assert.equal(entry.upstream_request_id, requestId);
  assert.equal(entry.key_id, keyId(stack.openaiKey));
  assert.equal(entry.bytes_out, upstream.response.body.length);

  const metrics = await stack.tokentap.waitForMetrics(
    (m) => m.value('tokentap_requests_total', { route: 'openai', code: '200' }) === 1,
    'tokentap_requests_total{route="openai",code="200"} 1',
  );
  assert.equal(metrics.sum('tokentap_requests_total'), 1);
});

test('tool call and its follow-up reuse one upstream connection', async (t) => {
  const stack = await startStack(t);
  const call = {
    id: ids.toolCall(),
    name: 'get_weather',
    arguments: '{"city":"Zürich","unit":"c"}',
  };
  const toolTurn = openai.completion({
    model: SERVED_MODEL,
    toolCalls: [call],
    usage: openai.usage(82, 18),
  });
  const answer = openai.completion({
    model: SERVED_MODEL,
    content: 'It is 21 °C and sunny in Zürich.',
    usage: openai.usage(120, 11),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: toolTurn });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: answer });
  const client = stack.openai();
  const messages = [{ role: 'user', content: 'What is the weather in Zürich?' }];

  const first = await client.chat.completions.create({
    model: MODEL,
    messages,
    tools: [WEATHER_TOOL],
    tool_choice: 'auto',
  });
  assert.deepEqual(first, toolTurn);
  const toolCall = first.choices[0].message.tool_calls[0];
  assert.deepEqual(JSON.parse(toolCall.function.arguments), { city: 'Zürich', unit: 'c' });

  messages.push(first.choices[0].message);
  messages.push({
    role: 'tool',
    tool_call_id: toolCall.id,
    content: '{"temp_c":21,"sky":"sunny"}',
  });
  const second = await client.chat.completions.create({
    model: MODEL,
    messages,
    tools: [WEATHER_TOOL],
  });
  assert.deepEqual(second, answer);

  const upstreamSecond = await stack.fake.request(1);
  assert.deepEqual(upstreamSecond.json().messages.at(-1), {
    role: 'tool',
    tool_call_id: call.id,
    content: '{"temp_c":21,"sky":"sunny"}',
  });
  const entryFirst = await stack.assertForwarded(stack.sdkRequests[0], await stack.fake.request(0));
  const entrySecond = await stack.assertForwarded(stack.sdkRequests[1], upstreamSecond);
  assert.equal(entryFirst.upstream_connection_reused, false);
  assert.equal(entrySecond.upstream_connection_reused, true);
  assert.notEqual(entryFirst.request_id, entrySecond.request_id);
  await stack.tokentap.waitForMetrics(
    (m) => m.value('tokentap_requests_total', { route: 'openai', code: '200' }) === 2,
    'two requests counted',
  );
});

test('streamed chat reaches the SDK chunk by chunk, usage chunk included', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.openaiRequest();
  const chunks = openai.chunks({
    model: SERVED_MODEL,
    text: 'Paris is the capital of France.',
    textPieces: 4,
    usage: openai.usage(20, 7),
  });
  const events = openai.sse(chunks);
  const held = gate();
  // The provider stops after two chunks until the test has seen them through the SDK: a proxy
  // that buffered the stream would deadlock here instead.
  stack.fake.reply({
    headers: openai.headers(requestId),
    sse: [...events.slice(0, 2), held.wait, ...events.slice(2)],
  });

  const { data: stream, request_id } = await stack
    .openai()
    .chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Capital of France?' }],
      stream: true,
      stream_options: { include_usage: true },
    })
    .withResponse();
  assert.equal(request_id, requestId);

  const received = [];
  await within(
    (async () => {
      for await (const chunk of stream) {
        received.push(chunk);
        if (received.length === 2) held.open();
      }
    })(),
    10_000,
    'the first two chunks to arrive while the provider holds the rest',
  );

  assert.deepEqual(received, chunks);
  assert.equal(
    received.map((c) => c.choices[0]?.delta.content ?? '').join(''),
    'Paris is the capital of France.',
  );
  assert.deepEqual(received.at(-1).usage, openai.usage(20, 7));

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.status, 200);
  assert.equal(entry.error_type, 'none');
  assert.equal(entry.upstream_request_id, requestId);
  assert.equal(entry.bytes_out, upstream.response.body.length);
  assert.ok(upstream.response.body.toString().endsWith('data: [DONE]\n\n'));
});

test('streamed tool call: the client sees the stream it asked for', async (t) => {
  const stack = await startStack(t);
  const call = { id: ids.toolCall(), name: 'get_weather', arguments: '{"city":"Oslo","unit":"c"}' };
  const chunks = openai.chunks({ model: SERVED_MODEL, toolCalls: [call], argumentPieces: 4 });
  const usageChunk = openai
    .chunks({ model: SERVED_MODEL, toolCalls: [call], usage: openai.usage(70, 15) })
    .at(-1);
  // Like the real API: a usage chunk only when the request asks for one. The SDK does not ask;
  // tokentap may (metering.include_stream_usage), and must then take the usage chunk back out.
  let providerChunks = null;
  stack.fake.reply((request) => {
    const wantsUsage = request.json().stream_options?.include_usage === true;
    providerChunks = wantsUsage
      ? [...chunks.map((c) => ({ ...c, usage: null })), usageChunk]
      : chunks;
    return { headers: openai.headers(ids.openaiRequest()), sse: openai.sse(providerChunks) };
  });

  const stream = stack.openai().chat.completions.stream({
    model: MODEL,
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [WEATHER_TOOL],
  });
  const received = [];
  stream.on('chunk', (chunk) => received.push(chunk));
  const final = await within(stream.finalChatCompletion(), 10_000, 'the streamed tool call');

  // The client gets the stream it would get without tokentap: no usage chunk, no usage:null.
  assert.deepEqual(received, chunks);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(
    final.choices[0].message.tool_calls.map((c) => ({
      id: c.id,
      name: c.function.name,
      arguments: c.function.arguments,
    })),
    [call],
  );

  const sdkRequest = stack.sdkRequests[0];
  const upstream = await stack.fake.request(0);
  const sent = sdkRequest.body.toString();
  assert.equal(sdkRequest.json().stream_options, undefined);
  const withUsage = `${sent.slice(0, -1)},"stream_options":{"include_usage":true}}`;
  assert.ok(
    upstream.bodyText === sent || upstream.bodyText === withUsage,
    `the only sanctioned change to a request body is adding stream_options; got ${upstream.bodyText}`,
  );
  const entry = await stack.assertForwarded(sdkRequest, upstream, {
    body: Buffer.from(upstream.bodyText),
  });
  const direct = Buffer.byteLength(openai.sse(chunks).map((step) => encodeSse(step)).join(''));
  assert.equal(entry.bytes_out, direct);
});
