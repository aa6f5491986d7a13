// Errors as the SDKs see them through tokentap: provider errors keep their status, body and
// request id (so the SDK raises the right APIError subclass), and tokentap's own errors are in the
// route provider's error shape with the retry advice (x-should-retry, retry-after) the SDKs obey.
import assert from 'node:assert/strict';
import test from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { collect, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids, openai } from './wire.mjs';

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('OpenAI 429 surfaces as RateLimitError with the provider message and request id', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.openaiRequest();
  const body = openai.rateLimitError(
    'Rate limit reached for gpt-4o-mini in organization org-e2e on requests per min (RPM): ' +
      'Limit 3, Used 3, Requested 1. Please try again in 20s.',
  );
  stack.fake.reply({
    status: 429,
    headers: { ...openai.headers(requestId), 'retry-after': '20' },
    json: body,
  });

  await assert.rejects(
    stack.openai().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(
        err instanceof OpenAI.RateLimitError,
        `got ${err.constructor.name}: ${err.message}`,
      );
      assert.equal(err.status, 429);
      assert.deepEqual(err.error, body.error);
      assert.equal(err.message, `429 ${body.error.message}`);
      assert.equal(err.type, 'rate_limit_error');
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.equal(err.requestID, requestId);
      assert.equal(err.headers.get('retry-after'), '20');
      return true;
    },
  );

  assert.equal(stack.fake.requests.length, 1, 'the SDK must not have retried (maxRetries: 0)');
  const entry = await stack.assertForwarded(stack.sdkRequests[0], stack.fake.requests[0]);
  assert.equal(entry.status, 429);
  assert.equal(entry.upstream_status, 429);
  assert.equal(entry.upstream_request_id, requestId);
  assert.equal(entry.bytes_out, stack.fake.requests[0].response.body.length);
  await stack.tokentap.waitForMetrics(
    (m) => m.value('tokentap_requests_total', { route: 'openai', code: '429' }) === 1,
    'tokentap_requests_total{route="openai",code="429"} 1',
  );
});

test('Anthropic 529 surfaces as OverloadedError with the provider body and request id', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  const body = anthropic.overloadedError(requestId);
  stack.fake.reply({ status: 529, headers: anthropic.headers(requestId), json: body });

  await assert.rejects(
    stack.anthropic().messages.create({
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(
        err instanceof Anthropic.OverloadedError,
        `got ${err.constructor.name}: ${err.message}`,
      );
      assert.ok(err instanceof Anthropic.InternalServerError);
      assert.equal(err.status, 529);
      assert.deepEqual(err.error, body);
      assert.equal(err.type, 'overloaded_error');
      assert.match(err.message, /^529 .*Overloaded/);
      assert.equal(err.requestID, requestId);
      return true;
    },
  );

  const entry = await stack.assertForwarded(stack.sdkRequests[0], await stack.fake.request(0));
  assert.equal(entry.route, 'anthropic');
  assert.equal(entry.status, 529);
  assert.equal(entry.upstream_status, 529);
  assert.equal(entry.upstream_request_id, requestId);
  await stack.tokentap.waitForMetrics(
    (m) => m.value('tokentap_requests_total', { route: 'anthropic', code: '529' }) === 1,
    'tokentap_requests_total{route="anthropic",code="529"} 1',
  );
});

test('Anthropic error event in the middle of a stream reaches the SDK', async (t) => {
  const stack = await startStack(t);
  const requestId = ids.anthropicRequest();
  const message = anthropic.message({
    model: 'claude-haiku-4-5-20251001',
    content: [{ type: 'text', text: 'This answer will be cut short.' }],
    usage: anthropic.usage(9, 30),
  });
  const events = anthropic.streamEvents(message);
  const cut = events.findIndex((e) => e.event === 'content_block_delta') + 1;
  const error = anthropic.overloadedError(requestId);
  stack.fake.reply({
    headers: anthropic.headers(requestId),
    sse: [...events.slice(0, cut), { event: 'error', data: error }],
  });

  const stream = await stack.anthropic().messages.create({
    model: 'claude-haiku-4-5-20251001',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  await assert.rejects(within(collect(stream), 10_000, 'the stream to fail'), (err) => {
    assert.ok(err instanceof Anthropic.APIError, `got ${err.constructor.name}: ${err.message}`);
    assert.deepEqual(err.error, error);
    assert.equal(err.type, 'overloaded_error');
    assert.equal(err.requestID, requestId);
    return true;
  });

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.status, 200);
  assert.equal(entry.bytes_out, upstream.response.body.length);
});

test("tokentap's own upstream TLS error is JSON the SDKs understand", async (t) => {
  // The fake's certificate is signed by the test CA, which tokentap is not told to trust.
  const stack = await startStack(t, { trustCa: false });

  await assert.rejects(
    stack.openai().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(
        err instanceof OpenAI.InternalServerError,
        `got ${err.constructor.name}: ${err.message}`,
      );
      assert.equal(err.status, 502);
      assert.equal(err.type, 'server_error');
      assert.equal(err.code, 'upstream_tls_error');
      assert.match(err.requestID, UUID4);
      assert.equal(err.error.request_id, err.requestID);
      assert.equal(err.error.tokentap_error, 'upstream_tls_error');
      assert.match(err.message, /^502 tokentap upstream_tls_error: /);
      assert.equal(err.headers.get('x-should-retry'), 'true');
      return true;
    },
  );
  await assert.rejects(
    stack.anthropic().messages.create({
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(
        err instanceof Anthropic.InternalServerError,
        `got ${err.constructor.name}: ${err.message}`,
      );
      assert.equal(err.status, 502);
      assert.equal(err.type, 'api_error');
      assert.equal(err.error.type, 'error');
      assert.equal(err.error.error.tokentap_error, 'upstream_tls_error');
      assert.match(err.error.request_id, UUID4);
      assert.equal(err.error.request_id, err.headers.get('x-request-id'));
      assert.match(err.apiMessage, /^tokentap upstream_tls_error: /);
      return true;
    },
  );

  assert.equal(stack.fake.requests.length, 0, 'no request may reach an unverified upstream');
  for (const route of ['openai', 'anthropic']) {
    const entry = await stack.tokentap.waitForAccessLog(
      (e) => e.route === route,
      `the ${route} log line`,
    );
    assert.equal(entry.status, 502, route);
    assert.equal(entry.error_type, 'tls_error', route);
    assert.equal(entry.proxy_error, 'upstream_tls_error', route);
    assert.equal(entry.upstream_status, 0, route);
  }
  await stack.tokentap.waitForMetrics(
    (m) =>
      m.value('tokentap_upstream_connect_errors_total', { route: 'openai', kind: 'tls' }) === 1 &&
      m.value('tokentap_upstream_connect_errors_total', { route: 'anthropic', kind: 'tls' }) ===
        1 &&
      m.value('tokentap_requests_total', { route: 'openai', code: '502' }) === 1 &&
      m.value('tokentap_requests_total', { route: 'anthropic', code: '502' }) === 1,
    'TLS errors and 502s counted per route',
  );
});

test("a spent budget stops the SDKs' retries and tells them why", async (t) => {
  const stack = await startStack(t, {
    config: { budgets: [{ agent: '*', hourly_usd: 0.000001, action: 'block' }] },
  });
  stack.fake.reply({
    headers: openai.headers(ids.openaiRequest()),
    json: openai.completion({ model: 'gpt-4o-mini', content: 'ok', usage: openai.usage(50, 50) }),
  });
  await stack.openai().chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'spend it' }],
  });
  await stack.accessLogOf(await stack.fake.request(0));

  // The SDKs' default retries (2, with backoff) stay on: x-should-retry: false must stop them.
  let sent = stack.sdkRequests.length;
  await assert.rejects(
    stack.anthropic({ maxRetries: 2 }).messages.create({
      model: 'claude-haiku-4-5-20251001',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(err instanceof Anthropic.RateLimitError, `got ${err.constructor.name}`);
      assert.equal(err.type, 'rate_limit_error');
      assert.match(err.apiMessage, /^tokentap budget_exceeded: the all-agents hourly budget/);
      assert.equal(err.error.error.tokentap_error, 'budget_exceeded');
      assert.equal(err.headers.get('x-should-retry'), 'false');
      const wait = Number(err.headers.get('retry-after'));
      assert.ok(wait > 3600 - 120 && wait <= 3600, `retry-after ${wait}`);
      return true;
    },
  );
  assert.equal(stack.sdkRequests.length - sent, 1, 'the Anthropic SDK must not retry');

  sent = stack.sdkRequests.length;
  await assert.rejects(
    stack.openai({ maxRetries: 2 }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err.constructor.name}`);
      assert.equal(err.type, 'insufficient_quota');
      assert.equal(err.code, 'budget_exceeded');
      assert.match(err.message, /^429 tokentap budget_exceeded: the all-agents hourly budget/);
      assert.equal(err.error.request_id, err.requestID);
      return true;
    },
  );
  assert.equal(stack.sdkRequests.length - sent, 1, 'the OpenAI SDK must not retry');
  assert.equal(stack.fake.requests.length, 1, 'refusals never reach the provider');
});

test('a non-JSON 502 from in front of the provider reaches the SDK as it was', async (t) => {
  const stack = await startStack(t);
  const page = '<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>';
  stack.fake.reply({ status: 502, headers: { 'content-type': 'text/html' }, body: page });

  let requestId;
  await assert.rejects(
    stack.openai().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError, `got ${err.constructor.name}`);
      assert.equal(err.status, 502);
      assert.equal(err.message, `502 ${page}`);
      requestId = err.requestID;
      return true;
    },
  );

  const upstream = await stack.fake.request(0);
  const entry = await stack.assertForwarded(stack.sdkRequests[0], upstream);
  assert.equal(entry.status, 502);
  assert.equal(entry.upstream_status, 502);
  assert.equal(entry.bytes_out, Buffer.byteLength(page));
  assert.equal(requestId, entry.request_id, 'the client can still correlate it with the log');
});
