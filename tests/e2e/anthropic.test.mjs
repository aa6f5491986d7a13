// The official Anthropic SDK through tokentap: Messages API without streaming, with
// client.messages.stream() and with stream: true, text and tool use.
import assert from 'node:assert/strict';
import test from 'node:test';

import { collect, gate, keyId, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids } from './wire.mjs';

const MODEL = 'claude-haiku-4-5-20251001';

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'Current weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

test('message round-trips byte for byte, with the provider request id', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  const message = anthropic.message({
    model: MODEL,
    content: [{ type: 'text', text: 'Bonjour ! La capitale de la France est Paris. 🗼' }],
    usage: anthropic.usage(25, 17, { cacheRead: 12 }),
  });
  stack.fake.reply({ headers: anthropic.headers(requestId), json: message });

  const { data, response, request_id } = await stack
    .anthropic()
    .messages.create({
      model: MODEL,
      max_tokens: 256,
      system: 'Answer in French.',
      messages: [{ role: 'user', content: 'What is the capital of France? ❓' }],
    })
    .withResponse();

  assert.deepEqual(data, message);
  assert.equal(request_id, requestId);
  assert.equal(data._request_id, requestId);
  assert.equal(response.headers.get('request-id'), requestId);

  const upstream = await stack.fake.request(0);
  stack.assertKeyForwarded(stack.sdkRequests[0], upstream, stack.anthropicKey);
  assert.ok(upstream.headers['anthropic-version'], 'anthropic-version reached the provider');
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  // The provider sent no x-request-id, so the client gets tokentap's, the one it sent upstream.
  assert.equal(response.headers.get('x-request-id'), entry.request_id);
  assert.equal(entry.path, '/v1/messages');
  assert.equal(entry.route, 'anthropic');
  assert.equal(entry.status, 200);
  assert.equal(entry.error_type, 'none');
  assert.equal(entry.upstream_request_id, requestId);
  assert.equal(entry.key_id, keyId(stack.anthropicKey));
  assert.equal(entry.bytes_out, upstream.response.body.length);

  const metrics = await stack.tokentap.waitForMetrics(
    (m) => m.value('tokentap_requests_total', { route: 'anthropic', code: '200' }) === 1,
    'tokentap_requests_total{route="anthropic",code="200"} 1',
  );
  assert.equal(metrics.sum('tokentap_requests_total'), 1);
});

test('messages.stream(): text arrives event by event and assembles into the message', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  const message = anthropic.message({
    model: MODEL,
    content: [{ type: 'text', text: 'Streams are sequences of events, sent as they happen.' }],
    usage: anthropic.usage(14, 11),
  });
  const events = anthropic.streamEvents(message, { textPieces: 5 });
  const firstDelta = events.findIndex((e) => e.event === 'content_block_delta');
  const held = gate();
  stack.fake.reply({
    headers: anthropic.headers(requestId),
    sse: [...events.slice(0, firstDelta + 1), held.wait, ...events.slice(firstDelta + 1)],
  });

  const stream = stack.anthropic().messages.stream({
    model: MODEL,
    max_tokens: 128,
    messages: [{ role: 'user', content: 'What is a stream?' }],
  });
  const texts = [];
  stream.on('text', (delta) => {
    texts.push(delta);
    held.open(); // the provider holds the rest until the first delta got through
  });
  const final = await within(
    stream.finalMessage(),
    10_000,
    'the first text delta while the provider holds the rest',
  );

  // parsed_output and stop_details are the stream helper's own additions.
  const { parsed_output: _parsed, stop_details: _details, ...assembled } = final;
  assert.deepEqual(assembled, message);
  assert.deepEqual(
    texts,
    events.filter((e) => e.data.delta?.type === 'text_delta').map((e) => e.data.delta.text),
  );
  assert.equal(stream.request_id, requestId);

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(upstream.json().stream, true);
  assert.equal(entry.status, 200);
  assert.equal(entry.error_type, 'none');
  assert.equal(entry.upstream_request_id, requestId);
  assert.equal(entry.bytes_out, upstream.response.body.length);
});

test('stream: true with tool use yields every event the provider sent', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: MODEL,
    content: [
      { type: 'text', text: 'Let me look that up.' },
      { type: 'tool_use', id: ids.toolUse(), name: 'get_weather', input: { city: 'Reykjavík' } },
    ],
    usage: anthropic.usage(310, 64),
  });
  const events = anthropic.streamEvents(message, { jsonPieces: 4 });
  stack.fake.reply({ headers: anthropic.headers(ids.anthropicRequest()), sse: events });

  const stream = await stack.anthropic().messages.create({
    model: MODEL,
    max_tokens: 512,
    tools: [WEATHER_TOOL],
    messages: [{ role: 'user', content: 'Weather in Reykjavík?' }],
    stream: true,
  });
  const received = await within(collect(stream), 10_000, 'the whole event stream');

  // The SDK drops pings and hands over every other event as the provider sent it.
  assert.deepEqual(
    received,
    events.filter((e) => e.event !== 'ping').map((e) => e.data),
  );
  const json = received
    .filter((e) => e.delta?.type === 'input_json_delta')
    .map((e) => e.delta.partial_json)
    .join('');
  assert.deepEqual(JSON.parse(json), { city: 'Reykjavík' });
  assert.equal(received.find((e) => e.type === 'message_delta').delta.stop_reason, 'tool_use');

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.deepEqual(upstream.json().tools, [WEATHER_TOOL]);
  assert.equal(entry.bytes_out, upstream.response.body.length);
  assert.equal(upstream.response.body.toString().split('event: ').length - 1, events.length);
});
