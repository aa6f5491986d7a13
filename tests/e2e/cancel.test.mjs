// A client that gives up in the middle of a stream: tokentap must close the provider connection
// at once, log the request as client_cancelled, and leave nothing in flight.
import assert from 'node:assert/strict';
import test from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids, openai } from './wire.mjs';

async function assertCancelled(stack, route) {
  const upstream = await stack.fake.request(0);
  assert.equal(
    await within(upstream.done, 10_000, 'the provider to see its connection closed'),
    'closed',
  );
  assert.ok(upstream.closedEarly);
  const entry = await stack.accessLogOf(upstream);
  assert.equal(entry.route, route);
  assert.equal(entry.error_type, 'client_cancelled');
  assert.equal(entry.status, 200, 'the status the client was sent before it left');
  assert.equal(entry.upstream_status, 200);
  assert.ok(
    entry.bytes_out > 0 && entry.bytes_out <= upstream.response.body.length,
    `bytes_out ${entry.bytes_out} of ${upstream.response.body.length} sent by the provider`,
  );
  await stack.tokentap.waitForMetrics(
    (m) =>
      m.value('tokentap_requests_total', { route, code: '200' }) === 1 &&
      m.value('tokentap_inflight_requests') === 0 &&
      m.value('tokentap_open_connections', { side: 'upstream' }) === 0,
    `the cancelled ${route} request counted, nothing in flight, no upstream connection left`,
  );
}

test('OpenAI stream aborted with an AbortController', async (t) => {
  const stack = await startStack(t);
  const chunks = openai.chunks({
    model: 'gpt-4o-mini-2024-07-18',
    text: 'A long answer nobody will read.',
    textPieces: 8,
  });
  // Three chunks, then the provider keeps the stream open as if the model were still thinking.
  stack.fake.reply({
    headers: openai.headers(ids.openaiRequest()),
    sse: openai.sse(chunks).slice(0, 3),
    end: false,
  });

  const controller = new AbortController();
  const stream = await stack
    .openai()
    .chat.completions.create(
      {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        stream: true,
      },
      { signal: controller.signal },
    );
  const received = [];
  await within(
    (async () => {
      for await (const chunk of stream) {
        received.push(chunk);
        if (received.length === 2) controller.abort();
      }
    })(),
    10_000,
    'two chunks, then the end of the aborted stream',
  );

  // Chunks already decoded when the abort came may still be handed over, never more than were sent.
  assert.ok(received.length >= 2 && received.length <= 3, `${received.length} chunks`);
  assert.deepEqual(received, chunks.slice(0, received.length));
  await assertCancelled(stack, 'openai');
});

test('Anthropic messages.stream() aborted after the first text', async (t) => {
  const stack = await startStack(t);
  const message = anthropic.message({
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: 'A long answer nobody will read.' }],
    usage: anthropic.usage(11, 90),
  });
  const events = anthropic.streamEvents(message, { textPieces: 6 });
  const firstDelta = events.findIndex((e) => e.event === 'content_block_delta');
  stack.fake.reply({
    headers: anthropic.headers(ids.anthropicRequest()),
    sse: events.slice(0, firstDelta + 1),
    end: false,
  });

  const stream = stack.anthropic().messages.stream({
    model: 'claude-haiku-4-5-20251001',
    max_tokens: 1024,
    messages: [{ role: 'user', content: 'Tell me a story.' }],
  });
  const texts = [];
  stream.on('text', (text) => {
    texts.push(text);
    stream.abort();
  });
  await assert.rejects(
    within(stream.done(), 10_000, 'the aborted stream to end'),
    Anthropic.APIUserAbortError,
  );

  assert.deepEqual(texts, [events[firstDelta].data.delta.text]);
  assert.ok(stream.aborted);
  await assertCancelled(stack, 'anthropic');
});
