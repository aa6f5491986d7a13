// /metrics after a known mix of SDK traffic. The mix is a table of exchanges, each naming the
// provider, model and token counts the fake reports, so metrics derived from the payload can be
// checked against the same table.
import assert from 'node:assert/strict';
import test from 'node:test';

import { collect, startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { anthropic, ids, openai } from './wire.mjs';

const EXCHANGES = [
  {
    provider: 'openai',
    model: 'gpt-4o-mini-2024-07-18',
    stream: false,
    status: 200,
    input: 31,
    output: 12,
  },
  {
    provider: 'openai',
    model: 'gpt-4o-2024-08-06',
    stream: true,
    status: 200,
    input: 54,
    output: 21,
  },
  { provider: 'openai', model: 'gpt-4o-mini-2024-07-18', stream: false, status: 429 },
  {
    provider: 'anthropic',
    model: 'claude-haiku-4-5-20251001',
    stream: false,
    status: 200,
    input: 25,
    output: 17,
  },
  {
    provider: 'anthropic',
    model: 'claude-opus-4-1-20250805',
    stream: true,
    status: 200,
    input: 410,
    output: 96,
  },
  { provider: 'anthropic', model: 'claude-haiku-4-5-20251001', stream: false, status: 529 },
];

// Queues the provider's side of `x` on the fake and runs the SDK's side; resolves once the SDK
// has the whole answer (or the error it should raise).
async function exchange(stack, x) {
  const text = `Answer from ${x.model}.`;
  if (x.provider === 'openai') {
    const headers = openai.headers(ids.openaiRequest());
    const request = { model: x.model, messages: [{ role: 'user', content: 'hi' }] };
    if (x.status !== 200) {
      stack.fake.reply({
        status: x.status,
        headers,
        json: openai.rateLimitError('Rate limit reached.'),
      });
      await assert.rejects(stack.openai().chat.completions.create(request), { status: x.status });
    } else if (x.stream) {
      const chunks = openai.chunks({
        model: x.model,
        text,
        usage: openai.usage(x.input, x.output),
      });
      stack.fake.reply({ headers, sse: openai.sse(chunks) });
      const stream = await stack
        .openai()
        .chat.completions.create({
          ...request,
          stream: true,
          stream_options: { include_usage: true },
        });
      assert.deepEqual(await within(collect(stream), 10_000, `${x.model} stream`), chunks);
    } else {
      const completion = openai.completion({
        model: x.model,
        content: text,
        usage: openai.usage(x.input, x.output),
      });
      stack.fake.reply({ headers, json: completion });
      assert.deepEqual(await stack.openai().chat.completions.create(request), completion);
    }
    return;
  }
  const requestId = ids.anthropicRequest();
  const headers = anthropic.headers(requestId);
  const request = { model: x.model, max_tokens: 256, messages: [{ role: 'user', content: 'hi' }] };
  if (x.status !== 200) {
    stack.fake.reply({ status: x.status, headers, json: anthropic.overloadedError(requestId) });
    await assert.rejects(stack.anthropic().messages.create(request), { status: x.status });
    return;
  }
  const message = anthropic.message({
    model: x.model,
    content: [{ type: 'text', text }],
    usage: anthropic.usage(x.input, x.output),
  });
  if (x.stream) {
    const events = anthropic.streamEvents(message);
    stack.fake.reply({ headers, sse: events });
    const stream = await stack.anthropic().messages.create({ ...request, stream: true });
    assert.deepEqual(
      await within(collect(stream), 10_000, `${x.model} stream`),
      events.filter((e) => e.event !== 'ping').map((e) => e.data),
    );
  } else {
    stack.fake.reply({ headers, json: message });
    assert.deepEqual(await stack.anthropic().messages.create(request), message);
  }
}

function countBy(items, key) {
  const counts = new Map();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

test('request counters match the traffic, by route and status', async (t) => {
  const stack = await startStack(t);
  for (const x of EXCHANGES) await exchange(stack, x);

  assert.equal(stack.fake.requests.length, EXCHANGES.length);
  for (const upstream of stack.fake.requests) await stack.accessLogOf(upstream);
  const expected = countBy(EXCHANGES, (x) => `${x.provider} ${x.status}`); // routes are named after providers
  const metrics = await stack.tokentap.waitForMetrics(
    (m) =>
      m.sum('tokentap_requests_total') === EXCHANGES.length &&
      m.value('tokentap_inflight_requests') === 0,
    `${EXCHANGES.length} requests counted and none in flight`,
  );

  assert.equal(metrics.types.get('tokentap_requests_total'), 'counter');
  const actual = new Map(
    metrics
      .find('tokentap_requests_total')
      .filter((s) => s.value > 0)
      .map((s) => [`${s.labels.route} ${s.labels.code}`, s.value]),
  );
  assert.deepEqual(actual, expected);
  assert.equal(metrics.sum('tokentap_upstream_connections_total'), EXCHANGES.length);
  assert.equal(metrics.sum('tokentap_upstream_connect_errors_total'), 0);
  assert.equal(metrics.value('tokentap_build_info'), 1);
  assert.match(metrics.find('tokentap_build_info')[0].labels.version, /^\d+\.\d+\.\d+/);

  const log = stack.tokentap.accessLog();
  assert.deepEqual(
    countBy(log, (e) => `${e.route} ${e.status}`),
    expected,
  );
  assert.ok(log.every((e) => e.agent === 'e2e-agent'));
  assert.ok(log.filter((e) => e.status === 200).every((e) => e.error_type === 'none'));
});

test('scrapeMetrics parses the exposition tokentap serves', async (t) => {
  const stack = await startStack(t);
  const metrics = await stack.tokentap.scrapeMetrics();
  const text = metrics.text.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.equal(metrics.samples.length, text.length, 'every sample line parsed');
  assert.ok(metrics.samples.every((s) => Number.isFinite(s.value)));
  assert.equal(metrics.types.get('tokentap_inflight_requests'), 'gauge');
  assert.equal(metrics.value('tokentap_inflight_requests'), 0);
  assert.equal(metrics.sum('tokentap_requests_total'), 0);
  assert.ok(metrics.value('process_resident_memory_bytes') > 0);
  assert.throws(() => metrics.value('tokentap_open_connections'), /matches 2 samples/);
});
