// What tokentap does to the transport around the payload, as the SDKs see it: compressed
// responses, plain-HTTP upstreams, and the x-request-id contract.
import assert from 'node:assert/strict';
import test from 'node:test';

import { collect, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids, openai } from './wire.mjs';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const LONG_TEXT = 'Token metering counts every token exactly once. '.repeat(40);

test('gzip-compressed OpenAI response passes through and the SDK decodes it', async (t) => {
  const stack = await startStack(t);
  const completion = openai.completion({
    model: 'gpt-4o-mini-2024-07-18',
    content: LONG_TEXT,
    usage: openai.usage(12, 400),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), json: completion, gzip: true });

  const { data, response } = await stack
    .openai()
    .chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say it forty times.' }],
    })
    .withResponse();

  assert.deepEqual(data, completion);
  const upstream = await stack.fake.request(0);
  assert.match(
    upstream.headers['accept-encoding'],
    /\bgzip\b/,
    "the client's Accept-Encoding reached the provider",
  );
  assert.equal(upstream.response.contentEncoding, 'gzip');
  assert.equal(response.headers.get('content-encoding'), 'gzip');
  assert.ok(upstream.response.body.length < JSON.stringify(completion).length / 4);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(
    entry.bytes_out,
    upstream.response.body.length,
    'the compressed bytes went to the client as they were',
  );
});

test('gzip-compressed Anthropic response passes through and the SDK decodes it', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: LONG_TEXT }],
    usage: anthropic.usage(12, 400),
  });
  stack.fake.reply({
    headers: anthropic.headers(ids.anthropicRequest()),
    json: message,
    gzip: true,
  });

  const data = await stack.anthropic().messages.create({
    model: 'claude-haiku-4-5-20251001',
    max_tokens: 1024,
    messages: [{ role: 'user', content: 'Say it forty times.' }],
  });

  assert.deepEqual(data, message);
  const upstream = await stack.fake.request(0);
  assert.equal(upstream.response.contentEncoding, 'gzip');
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.bytes_out, upstream.response.body.length);
});

test('plain-HTTP upstream serves both providers', async (t) => {
  const stack = await startStack(t, { tls: false });
  assert.equal(stack.fake.scheme, 'http');
  const chunks = openai.chunks({
    model: 'gpt-4o-mini-2024-07-18',
    text: 'Over plain HTTP.',
    usage: openai.usage(8, 4),
  });
  stack.fake.reply({ headers: openai.headers(ids.openaiRequest()), sse: openai.sse(chunks) });
  const message = anthropic.message({
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: 'Also over plain HTTP.' }],
    usage: anthropic.usage(5, 6),
  });
  stack.fake.reply({ headers: anthropic.headers(ids.anthropicRequest()), json: message });

  const stream = await stack.openai().chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.deepEqual(await within(collect(stream), 10_000, 'the stream'), chunks);
  assert.deepEqual(
    await stack.anthropic().messages.create({
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    message,
  );

  const openaiEntry = await stack.assertForwarded(
    stack.sdkRequests[0],
    await stack.fake.request(0),
  );
  const anthropicEntry = await stack.assertForwarded(
    stack.sdkRequests[1],
    await stack.fake.request(1),
  );
  assert.equal(openaiEntry.route, 'openai');
  assert.equal(openaiEntry.upstream, stack.fake.url);
  assert.equal(anthropicEntry.route, 'anthropic');
  assert.equal(anthropicEntry.upstream, stack.fake.url);
});

test("without a provider request id the SDK gets tokentap's, the one the provider was sent", async (t) => {
  const stack = await startStack(t);
  const completion = openai.completion({
    model: 'gpt-4o-mini-2024-07-18',
    content: 'ok',
    usage: openai.usage(3, 1),
  });
  stack.fake.reply({ json: completion }); // no x-request-id, like an OpenAI-compatible server

  const { data, request_id } = await stack
    .openai()
    .chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    })
    .withResponse();

  assert.deepEqual(data, completion);
  const upstream = await stack.fake.request(0);
  assert.deepEqual(upstream.headerValues('x-request-id'), [request_id]);
  assert.match(request_id, UUID4);
  assert.equal(data._request_id, request_id);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.request_id, request_id);
  assert.equal(entry.upstream_request_id, '');
});

test("a client x-request-id is kept, sent upstream, and yields to the provider's in the response", async (t) => {
  const stack = await startStack(t);
  const clientId = `agent-trace-${ids.openaiRequest()}`;
  const providerId = ids.openaiRequest();
  const completion = openai.completion({
    model: 'gpt-4o-mini-2024-07-18',
    content: 'ok',
    usage: openai.usage(3, 1),
  });
  stack.fake.reply({ json: completion });
  stack.fake.reply({ headers: openai.headers(providerId), json: completion });
  const client = stack.openai();
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  const options = { headers: { 'x-request-id': clientId } };

  const first = await client.chat.completions.create(params, options).withResponse();
  assert.equal(first.request_id, clientId, 'no provider id: the client gets its own back');
  const second = await client.chat.completions.create(params, options).withResponse();
  assert.equal(second.request_id, providerId, "the provider's id wins in the response");

  for (const [index, upstreamId] of [
    [0, ''],
    [1, providerId],
  ]) {
    const upstream = await stack.fake.request(index);
    assert.deepEqual(upstream.headerValues('x-request-id'), [clientId]);
    const entry = await stack.assertForwarded(stack.sdkRequests[index], upstream);
    assert.equal(entry.request_id, clientId);
    assert.equal(entry.upstream_request_id, upstreamId);
  }
});
