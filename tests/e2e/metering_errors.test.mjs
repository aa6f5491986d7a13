// Failed requests metered end to end: the error_type label of llm_requests_total for provider
// errors and tokentap's own, the provider error in the access log (never with a key in it), and
// a client that gives up in the middle of a stream.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import test from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { collect, gate, llmLogFields, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids, openai } from './wire.mjs';

const AGENT = 'e2e-agent';
const OPENAI_MODEL = 'gpt-4o-mini';
const ANTHROPIC_MODEL = 'claude-haiku-4-5';
const CHAT = { model: OPENAI_MODEL, messages: [{ role: 'user', content: 'hi' }] };

// A loopback port nothing listens on (bound, then released).
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function requestsRow(provider, model, operation, code, errorType) {
  return { agent: AGENT, provider, model, operation, code, error_type: errorType, value: 1 };
}

// The checks every failed request shares: one llm_requests_total series, no usage counted as
// missing (nothing was billable), no tokens, nothing in flight.
async function assertFailure(stack, row) {
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [row]);
  assert.equal(m.sum('llm_usage_missing_total'), 0);
  assert.equal(m.sum('llm_tokens_total'), 0);
  assert.equal(m.sum('llm_finish_reasons_total'), 0);
  return m;
}

test('OpenAI 429 is rate_limited, with the provider error and rate-limit headroom', async (t) => {
  const stack = await startStack(t);
  const body = openai.rateLimitError(
    'Rate limit reached for gpt-4o-mini in organization org-e2e on requests per min (RPM): ' +
      'Limit 10000, Used 10000, Requested 1. Please try again in 6ms.',
  );
  stack.fake.reply({
    status: 429,
    headers: {
      ...openai.headers(ids.openaiRequest()),
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-limit-tokens': '2000000',
      'x-ratelimit-remaining-tokens': '1999980',
      'retry-after': '1',
    },
    json: body,
  });

  await assert.rejects(stack.openai().chat.completions.create(CHAT), OpenAI.RateLimitError);

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.deepEqual(llmLogFields(entry), {
    provider: 'openai',
    operation: 'chat_completions',
    model: OPENAI_MODEL,
    response_model: '',
    stream: false,
    tokens: { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 },
    usage_source: 'none',
    finish_reason: '',
    tool_calls: {},
    error_type: 'rate_limited',
  });
  assert.deepEqual(entry.provider_error, {
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
    message: body.error.message,
  });

  const m = await assertFailure(
    stack,
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '429', 'rate_limited'),
  );
  assert.deepEqual(m.byLabel('llm_upstream_ratelimit_remaining', 'resource'), {
    requests: 0,
    tokens: 1999980,
  });
  assert.deepEqual(m.byLabel('llm_upstream_ratelimit_limit', 'resource'), {
    requests: 10000,
    tokens: 2000000,
  });
});

test('Anthropic 529 is overloaded', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  stack.fake.reply({
    status: 529,
    headers: anthropic.headers(requestId),
    json: anthropic.overloadedError(requestId),
  });

  await assert.rejects(
    stack.anthropic().messages.create({
      model: ANTHROPIC_MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    Anthropic.OverloadedError,
  );

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.error_type, 'overloaded');
  assert.equal(entry.error_stage, 'provider');
  assert.equal(entry.provider, 'anthropic');
  assert.equal(entry.model, ANTHROPIC_MODEL);
  assert.equal(entry.usage_source, 'none');
  assert.deepEqual(entry.provider_error, {
    type: 'overloaded_error',
    code: '',
    message: 'Overloaded',
  });
  await assertFailure(
    stack,
    requestsRow('anthropic', ANTHROPIC_MODEL, 'messages', '529', 'overloaded'),
  );
});

test('OpenAI 400 context_length_exceeded has its own error type', async (t) => {
  const stack = await startStack(t);
  const body = openai.contextLengthError(128000, 130532);
  stack.fake.reply({ status: 400, headers: openai.headers(ids.openaiRequest()), json: body });

  await assert.rejects(stack.openai().chat.completions.create(CHAT), OpenAI.BadRequestError);

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.error_type, 'context_length_exceeded');
  assert.deepEqual(entry.provider_error, {
    type: 'invalid_request_error',
    code: 'context_length_exceeded',
    message: body.error.message,
  });
  await assertFailure(
    stack,
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '400', 'context_length_exceeded'),
  );
});

test('a provider error quoting the API key is logged without it', async (t) => {
  const stack = await startStack(t);
  // Real OpenAI masks the key in this message; a compatible server may not. The teardown also
  // checks that no piece of the key reached stdout, stderr or /metrics.
  stack.fake.reply({
    status: 401,
    headers: openai.headers(ids.openaiRequest()),
    json: openai.invalidApiKeyError(stack.openaiKey),
  });

  await assert.rejects(stack.openai().chat.completions.create(CHAT), OpenAI.AuthenticationError);

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.error_type, 'authentication');
  assert.equal(entry.provider_error.type, 'invalid_request_error');
  assert.equal(entry.provider_error.code, 'invalid_api_key');
  assert.match(entry.provider_error.message, /^Incorrect API key provided: \S/);
  assert.match(entry.provider_error.message, /You can find your API key at/);
  assert.ok(!entry.provider_error.message.includes(stack.openaiKey.slice(-20)));
  await assertFailure(
    stack,
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '401', 'authentication'),
  );
});

test('a refused upstream connection is connect_error', async (t) => {
  const port = await closedPort();
  const stack = await startStack(t, {
    routes: [
      {
        name: 'dead',
        prefix: '/v1/chat/completions',
        upstream: `http://127.0.0.1:${port}`,
        provider: 'openai',
        tls: undefined,
      },
    ],
  });

  await assert.rejects(stack.openai().chat.completions.create(CHAT), (err) => {
    assert.ok(err instanceof OpenAI.InternalServerError, `got ${err.constructor.name}`);
    assert.equal(err.status, 502);
    return true;
  });

  const entry = await stack.tokentap.waitForAccessLog((e) => e.route === 'dead', 'the log line');
  assert.equal(entry.error_type, 'connect_error');
  assert.equal(entry.error_stage, 'upstream');
  assert.equal(entry.proxy_error, 'upstream_connect_error');
  assert.ok(!('llm_error_type' in entry));
  assert.equal(entry.model, OPENAI_MODEL);
  assert.equal(entry.usage_source, 'none');
  assert.ok(!('provider_error' in entry));
  assert.equal(stack.fake.requests.length, 0);
  await assertFailure(
    stack,
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '502', 'connect_error'),
  );
});

test('client abort mid-stream: client_cancelled, usage missing, nothing in flight', async (t) => {
  const stack = await startStack(t);
  // The provider streams three chunks and then keeps the stream open, as if still generating.
  stack.fake.reply((request) => ({
    headers: openai.headers(ids.openaiRequest()),
    sse: openai
      .streamFor(request.json(), {
        model: 'gpt-4o-mini-2024-07-18',
        text: 'A long story nobody will read to the end.',
        textPieces: 8,
        usage: openai.usage(30, 200),
      })
      .slice(0, 3),
    end: false,
  }));

  const controller = new AbortController();
  const stream = await stack
    .openai()
    .chat.completions.create({ ...CHAT, stream: true }, { signal: controller.signal });
  let received = 0;
  await within(
    (async () => {
      for await (const chunk of stream) {
        assert.ok(chunk.choices.length > 0);
        if (++received === 2) controller.abort();
      }
    })(),
    10_000,
    'two chunks, then the end of the aborted stream',
  );

  const upstream = await stack.fake.request(0);
  assert.equal(await within(upstream.done, 10_000, 'the provider connection to close'), 'closed');
  assert.ok(upstream.json().stream_options.include_usage, 'usage was requested for the meter');
  const entry = await stack.accessLogOf(upstream);
  assert.equal(entry.error_type, 'client_cancelled');
  assert.equal(entry.error_stage, 'downstream');
  // The provider bills what it generated: estimated from the request and the chunks received.
  assert.equal(entry.usage_source, 'estimated');
  assert.equal(entry.usage_missing_reason, 'client_cancelled');
  assert.ok(entry.tokens.input > 0 && entry.tokens.output > 0, JSON.stringify(entry.tokens));
  assert.ok(entry.cost_usd > 0);
  assert.equal(entry.stream, true);
  assert.ok(entry.ttft_ms > 0, 'the first token did arrive');

  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '200', 'client_cancelled'),
  ]);
  assert.deepEqual(m.series('llm_usage_missing_total'), [
    { agent: AGENT, provider: 'openai', model: OPENAI_MODEL, reason: 'client_cancelled', value: 1 },
  ]);
  assert.deepEqual(m.series('llm_inflight_requests'), [
    { agent: AGENT, provider: 'openai', value: 0 },
  ]);
  assert.equal(m.sum('llm_tokens_total'), entry.tokens.input + entry.tokens.output);
  assert.equal(m.sum('llm_estimated_tokens_total'), entry.tokens.input + entry.tokens.output);
  assert.equal(m.value('tokentap_inflight_requests'), 0);
});

test('provider cuts the stream: upstream_error, usage missing as upstream_error', async (t) => {
  const stack = await startStack(t);
  const sdkHasChunks = gate();
  stack.fake.reply((request) => ({
    headers: openai.headers(ids.openaiRequest()),
    sse: [
      ...openai
        .streamFor(request.json(), {
          model: 'gpt-4o-mini-2024-07-18',
          text: 'An answer the provider never finishes.',
          textPieces: 8,
          usage: openai.usage(30, 200),
        })
        .slice(0, 3),
      sdkHasChunks.wait,
      () => {
        throw new Error('the fake provider drops the connection');
      },
    ],
  }));

  const stream = await stack.openai().chat.completions.create({ ...CHAT, stream: true });
  let received = 0;
  await assert.rejects(
    within(
      (async () => {
        for await (const chunk of stream) {
          assert.ok(chunk.choices.length > 0);
          if (++received === 2) sdkHasChunks.open();
        }
      })(),
      10_000,
      'the cut stream to fail in the SDK',
    ),
  );

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.error_type, 'upstream_error');
  assert.equal(entry.proxy_error, 'upstream_reset');
  assert.equal(entry.usage_source, 'estimated');
  assert.equal(entry.usage_missing_reason, 'upstream_error');
  assert.ok(entry.tokens.input > 0 && entry.tokens.output > 0, JSON.stringify(entry.tokens));
  assert.ok(entry.ttft_ms > 0, 'content arrived before the cut');
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [
    requestsRow('openai', OPENAI_MODEL, 'chat_completions', '200', 'upstream_error'),
  ]);
  assert.deepEqual(m.byLabel('llm_usage_missing_total', 'reason'), { upstream_error: 1 });
});

// Anthropic reports errors that happen after the 200 as an `error` event in the stream. The
// request failed (the SDK raises), so it must not be counted as error_type="none".
test('Anthropic error event mid-stream is counted with its error type', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  const message = anthropic.message({
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: 'This answer will be cut short.' }],
    usage: anthropic.usage(9, 30),
  });
  const events = anthropic.streamEvents(message);
  const cut = events.findIndex((e) => e.event === 'content_block_delta') + 1;
  stack.fake.reply({
    headers: anthropic.headers(requestId),
    sse: [...events.slice(0, cut), { event: 'error', data: anthropic.overloadedError(requestId) }],
  });

  const stream = await stack.anthropic().messages.create({
    model: ANTHROPIC_MODEL,
    max_tokens: 64,
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  await assert.rejects(within(collect(stream), 10_000, 'the stream to fail'), (err) => {
    assert.equal(err.type, 'overloaded_error');
    return true;
  });

  const entry = await stack.accessLogOf(await stack.fake.request(0));
  assert.equal(entry.status, 200);
  assert.deepEqual(entry.provider_error, {
    type: 'overloaded_error',
    code: '',
    message: 'Overloaded',
  });
  // message_start's input side is exact; the output so far is estimated.
  assert.equal(entry.usage_source, 'partial');
  assert.equal(entry.tokens.input, 9);
  assert.ok(entry.estimated_tokens.output > 0);
  assert.equal(entry.error_type, 'overloaded');
  assert.equal(entry.error_stage, 'provider');
  assert.equal(entry.usage_missing_reason, 'upstream_error');
  const m = await stack.waitForLlmRequests(1);
  assert.deepEqual(m.series('llm_requests_total'), [
    requestsRow('anthropic', ANTHROPIC_MODEL, 'messages', '200', 'overloaded'),
  ]);
});
