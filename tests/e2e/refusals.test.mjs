// tokentap's own refusals (a blocking budget used up, a runaway session blocked) as agents' SDKs
// see them. Written ahead of the change (issue 11, the `errors` branch): every test here fails
// until tokentap answers as specified. tokentap answers in the error shape of the route's
// provider, so each SDK shows tokentap's reason instead of a bare status text:
//   OpenAI     {"error":{"message","type","code",...}}
//   Anthropic  {"type":"error","error":{"type","message"}}
//   Gemini     {"error":{"code","message","status"}}
// with tokentap's request id in the body and in the x-request-id header; a budget 429 carries
// retry-after (seconds until the budget window lets requests through again), a runaway-session
// 429 carries x-should-retry: false, the header the OpenAI and Anthropic SDKs obey before any
// retry rule of their own.
//
// The AI SDK (ai 6 and 7) has no such header: it retries every 408, 409, 429 and 5xx up to
// maxRetries (2 by default) whatever the response says, waiting retry-after only when it is under
// 60 s and its exponential backoff (2 s, 4 s) otherwise. What tokentap can promise it is that the
// retries are refused before any upstream contact and that the error it ends with carries
// tokentap's reason; that is what its test asserts.
import assert from 'node:assert/strict';
import test from 'node:test';

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { APICallError, RetryError, generateText } from 'ai';
import OpenAI from 'openai';

import { rawRequest, startStack } from './harness.mjs';
import { anthropic, ids, openai } from './wire.mjs';

const AGENT = 'e2e-agent';
const OPENAI_MODEL = 'gpt-4o-mini';
const ANTHROPIC_MODEL = 'claude-haiku-4-5';
const GEMINI_ROUTE = { name: 'gemini', prefix: '/v1beta/', provider: 'gemini' };
const HOURLY_USD = 0.001;
const BUDGET = { budgets: [{ agent: AGENT, hourly_usd: HOURLY_USD, action: 'block' }] };
// The second request of a session within a minute makes it a runaway.
const SESSIONS = { sessions: { max_requests_per_minute: 1, runaway_action: 'block' } };
const SESSION = 'conv-refusals-1';

// One OpenAI request whose cost (10k output tokens of gpt-4o-mini) uses up the hourly budget;
// resolves once tokentap has booked it.
async function spendBudget(stack) {
  stack.fake.reply({
    headers: openai.headers(ids.openaiRequest()),
    json: openai.completion({
      model: 'gpt-4o-mini-2024-07-18',
      content: 'Spent.',
      usage: openai.usage(1000, 10_000),
    }),
  });
  await stack.openai().chat.completions.create({
    model: OPENAI_MODEL,
    messages: [{ role: 'user', content: 'Spend the budget.' }],
  });
  await stack.accessLogOf(await stack.fake.request(0));
  await stack.tokentap.waitForMetrics(
    (m) => m.value('llm_budget_spent_usd', { agent: AGENT, window: '1h' }) >= HOURLY_USD,
    'the hourly budget used up',
  );
}

// The access-log lines of the requests tokentap refused with `errorType`, once the line of
// `lastId`, the client's last request, is written (the lines before it are then written too).
async function refused(stack, errorType, lastId) {
  await stack.tokentap.waitForAccessLog((e) => e.request_id === lastId, `the line of ${lastId}`);
  return stack.tokentap.accessLog().filter((e) => e.error_type === errorType);
}

// tokentap's reason for refusing request `requestId`, as GET /v1/errors reports it.
async function reasonOf(stack, requestId) {
  const response = await fetch(`${stack.tokentap.adminUrl}/v1/errors?limit=256`);
  const { errors } = await response.json();
  const entry = errors.find((e) => e.request_id === requestId);
  assert.ok(entry, `request ${requestId} is not in /v1/errors`);
  assert.ok(entry.message.length > 0, 'a refusal has a reason');
  return entry.message;
}

// Asserts a refusal's body has the shape of `provider`'s errors and, given `requestId`, carries
// it; returns the body's message.
function assertErrorShape(provider, body, requestId = null) {
  const text = JSON.stringify(body);
  if (requestId !== null) {
    assert.ok(text.includes(requestId), `request id ${requestId} not in the body ${text}`);
  }
  if (provider === 'openai') {
    assert.equal(typeof body.error?.message, 'string', text);
    assert.equal(typeof body.error.type, 'string', text);
    assert.ok('code' in body.error, `no error.code in ${text}`);
    return body.error.message;
  }
  if (provider === 'anthropic') {
    assert.equal(body.type, 'error', text);
    assert.equal(typeof body.error?.type, 'string', text);
    assert.equal(typeof body.error.message, 'string', text);
    return body.error.message;
  }
  assert.equal(provider, 'gemini');
  assert.equal(body.error?.code, 429, text);
  assert.equal(typeof body.error.message, 'string', text);
  assert.equal(typeof body.error.status, 'string', text);
  return body.error.message;
}

function assertRetryAfter(value) {
  assert.match(value ?? '', /^\d+$/, `retry-after ${value} is not a number of seconds`);
  const seconds = Number(value);
  assert.ok(seconds > 0 && seconds <= 3600, `retry-after ${seconds} s within the hourly window`);
}

test('budget block: each route answers in its provider shape, with retry-after', async (t) => {
  const stack = await startStack(t, { routes: [GEMINI_ROUTE], config: BUDGET });
  await spendBudget(stack);
  const calls = [
    {
      provider: 'openai',
      path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${stack.openaiKey}` },
      body: { model: OPENAI_MODEL, messages: [{ role: 'user', content: 'hi' }] },
    },
    {
      provider: 'anthropic',
      path: '/v1/messages',
      headers: { 'x-api-key': stack.anthropicKey, 'anthropic-version': '2023-06-01' },
      body: { model: ANTHROPIC_MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
    },
    {
      provider: 'gemini',
      path: '/v1beta/models/gemini-2.0-flash:generateContent',
      headers: { 'x-goog-api-key': stack.geminiKey },
      body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
    },
  ];

  for (const call of calls) {
    const response = await rawRequest(`${stack.tokentap.url}${call.path}`, {
      headers: { 'content-type': 'application/json', ...call.headers },
      body: JSON.stringify(call.body),
    });
    assert.equal(response.status, 429, call.provider);
    assert.match(response.headers['content-type'], /^application\/json/);
    const requestId = response.headers['x-request-id'];
    assert.ok(requestId, `${call.provider}: no x-request-id`);
    const message = assertErrorShape(call.provider, JSON.parse(response.body), requestId);
    const entry = await stack.tokentap.waitForAccessLog((e) => e.request_id === requestId);
    assert.equal(entry.status, 429);
    assert.equal(entry.error_type, 'budget_exceeded');
    const reason = await reasonOf(stack, requestId);
    assert.match(reason, /budget/);
    assert.ok(message.includes(reason), `${call.provider}: "${message}" lacks "${reason}"`);
    assertRetryAfter(response.headers['retry-after']);
  }
  assert.equal(stack.fake.requests.length, 1, 'no refused request reached the provider');
  const m = await stack.tokentap.scrapeMetrics();
  assert.equal(m.value('llm_budget_blocked_requests_total', { agent: AGENT }), calls.length);
});

// The AI SDK as an agent calls it, default retries included; returns the error it ended with.
async function aiSdkBlocked(model) {
  let error;
  await assert.rejects(
    generateText({ model, prompt: 'One more step?' }).catch((err) => {
      error = err;
      throw err;
    }),
  );
  return error;
}

for (const flavour of [
  {
    name: 'OpenAI',
    provider: 'openai',
    model: (stack) =>
      createOpenAI({
        baseURL: `${stack.tokentap.url}/v1`,
        apiKey: stack.openaiKey,
        fetch: stack.fetch,
      }).chat(OPENAI_MODEL),
  },
  {
    name: 'Anthropic',
    provider: 'anthropic',
    model: (stack) =>
      createAnthropic({
        baseURL: `${stack.tokentap.url}/v1`,
        apiKey: stack.anthropicKey,
        fetch: stack.fetch,
      })(ANTHROPIC_MODEL),
  },
]) {
  test(`AI SDK ${flavour.name}: a blocked budget fails with tokentap's reason, upstream untouched`, async (t) => {
    const stack = await startStack(t, { config: BUDGET });
    await spendBudget(stack);

    const error = await aiSdkBlocked(flavour.model(stack));
    // ai's maxRetries defaults to 2: three attempts, each refused by tokentap.
    assert.ok(RetryError.isInstance(error), `${error.name}: ${error.message}`);
    assert.equal(error.reason, 'maxRetriesExceeded');
    assert.equal(error.errors.length, 3);
    const last = error.lastError;
    assert.ok(APICallError.isInstance(last), `${last.name}: ${last.message}`);
    assert.equal(last.statusCode, 429);
    const requestId = last.responseHeaders['x-request-id'];
    const blocked = await refused(stack, 'budget_exceeded', requestId);
    assert.equal(blocked.length, 3, 'one access-log line per attempt');
    assert.equal(blocked.at(-1).request_id, requestId);
    assert.equal(stack.fake.requests.length, 1, 'no attempt reached the provider');

    assertErrorShape(flavour.provider, JSON.parse(last.responseBody), requestId);
    assertRetryAfter(last.responseHeaders['retry-after']);
    const reason = await reasonOf(stack, requestId);
    assert.ok(last.message.includes(reason), `"${last.message}" lacks tokentap's "${reason}"`);
    assert.ok(error.message.includes(reason), `"${error.message}" lacks tokentap's "${reason}"`);
  });
}

// A session's first request is served, its second in the same minute refused as a runaway.
async function runawaySession(stack, { reply, call }) {
  stack.fake.reply(reply);
  await call();
  let error;
  await assert.rejects(
    call().catch((err) => {
      error = err;
      throw err;
    }),
  );
  const requestId = error.headers.get('x-request-id');
  const blocked = await refused(stack, 'runaway_session', requestId);
  assert.equal(blocked.length, 1, 'the SDK did not retry the runaway block');
  assert.equal(blocked[0].request_id, requestId);
  assert.equal(stack.fake.requests.length, 1, 'the block did not reach the provider');
  assert.ok(!('x-session-id' in stack.fake.requests[0].headers));
  return { error, requestId, reason: await reasonOf(stack, requestId) };
}

test('Anthropic SDK: a runaway block shows tokentap message and is not retried', async (t) => {
  const stack = await startStack(t, { config: SESSIONS });
  // The SDK's own retry policy (maxRetries 2), as agents run it.
  const client = stack.anthropic({ maxRetries: 2, defaultHeaders: { 'x-session-id': SESSION } });
  const params = {
    model: ANTHROPIC_MODEL,
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Again.' }],
  };
  const { error, requestId, reason } = await runawaySession(stack, {
    reply: {
      headers: anthropic.headers(ids.anthropicRequest()),
      json: anthropic.message({
        model: 'claude-haiku-4-5-20251001',
        content: [{ type: 'text', text: 'Once.' }],
        usage: anthropic.usage(12, 3),
      }),
    },
    call: () => client.messages.create(params),
  });

  assert.ok(error instanceof Anthropic.RateLimitError, `${error.name}: ${error.message}`);
  assert.equal(error.status, 429);
  assert.equal(error.requestID, requestId, 'the SDK reads our id from request-id');
  assert.match(reason, /runaway/);
  assert.ok(error.message.includes(reason), `"${error.message}" lacks "${reason}"`);
  assert.notEqual(error.message, '429 Too Many Requests');
  const message = assertErrorShape('anthropic', error.error, requestId);
  assert.ok(message.includes(reason), `"${message}" lacks "${reason}"`);
  assert.equal(error.headers.get('x-should-retry'), 'false');
});

test('OpenAI SDK: a runaway block is not retried and shows tokentap message', async (t) => {
  const stack = await startStack(t, { config: SESSIONS });
  const client = stack.openai({ maxRetries: 2, defaultHeaders: { 'x-session-id': SESSION } });
  const params = { model: OPENAI_MODEL, messages: [{ role: 'user', content: 'Again.' }] };
  const { error, requestId, reason } = await runawaySession(stack, {
    reply: {
      headers: openai.headers(ids.openaiRequest()),
      json: openai.completion({
        model: 'gpt-4o-mini-2024-07-18',
        content: 'Once.',
        usage: openai.usage(12, 3),
      }),
    },
    call: () => client.chat.completions.create(params),
  });

  assert.ok(error instanceof OpenAI.RateLimitError, `${error.name}: ${error.message}`);
  assert.equal(error.status, 429);
  assert.match(reason, /runaway/);
  // error.error is the body's "error" member: the request id may be beside it (the budget test
  // checks the whole body). The SDK's message is "429 " and the body's message.
  const message = assertErrorShape('openai', { error: error.error });
  assert.ok(message.includes(reason), `"${message}" lacks "${reason}"`);
  assert.equal(error.message, `429 ${message}`);
  assert.equal(error.headers.get('x-should-retry'), 'false');
});
