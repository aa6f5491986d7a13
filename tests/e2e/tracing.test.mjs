// An agent instrumented with the official OpenTelemetry JS SDK calls the official OpenAI SDK
// through tokentap; the agent's spans and tokentap's spans go to one OTLP receiver, whose every
// body is decoded with the official opentelemetry-proto definitions (otlp_decode.mjs). They
// arrive in one trace: the agent's span is the parent of tokentap's, and the provider sees
// tokentap's span as its parent.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { context, propagation, trace, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { startStack } from './harness.mjs';
import { within } from './tokentap.mjs';
import { ids, openai } from './wire.mjs';

const DECODER = join(dirname(fileURLToPath(import.meta.url)), 'otlp_decode.mjs');

// An OTLP/HTTP trace receiver on 127.0.0.1:0 that keeps every decoded span.
async function startReceiver() {
  const spans = [];
  const server = createServer(async (req, res) => {
    const parts = [];
    for await (const part of req) parts.push(part);
    const format = (req.headers['content-type'] ?? '').includes('protobuf') ? 'protobuf' : 'json';
    const decoded = JSON.parse(
      execFileSync(process.execPath, [DECODER, format], { input: Buffer.concat(parts) }),
    );
    for (const resourceSpans of decoded.resourceSpans ?? []) {
      const resource = Object.fromEntries(
        (resourceSpans.resource?.attributes ?? []).map((a) => [a.key, Object.values(a.value)[0]]),
      );
      for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
        for (const span of scopeSpans.spans ?? []) spans.push({ ...span, resource });
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    spans,
    async waitFor(predicate, what) {
      await within(
        (async () => {
          while (!predicate(spans)) await new Promise((r) => setTimeout(r, 50));
        })(),
        15_000,
        what,
      );
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

test('the agent span and tokentap span arrive in one trace, parent and child', async (t) => {
  const receiver = await startReceiver();
  t.after(() => receiver.close());
  const stack = await startStack(t, {
    config: { tracing: { enabled: true, otlp_endpoint: receiver.url } },
  });

  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const exporter = new OTLPTraceExporter({ url: `${receiver.url}/v1/traces` });
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  t.after(async () => {
    await provider.shutdown();
    context.disable();
    propagation.disable();
  });
  const tracer = provider.getTracer('e2e-agent');

  // The agent's HTTP client puts the active context on each request, as fetch instrumentation
  // does: the OpenAI SDK takes any fetch.
  const tracedFetch = (url, init = {}) => {
    const headers = new Headers(init.headers);
    propagation.inject(context.active(), headers, {
      set: (carrier, key, value) => carrier.set(key, value),
    });
    return stack.fetch(url, { ...init, headers });
  };

  stack.fake.reply({
    headers: openai.headers(ids.openaiRequest()),
    json: openai.completion({
      model: 'gpt-4o-mini-2024-07-18',
      content: 'Paris.',
      usage: openai.usage(20, 2),
    }),
  });
  let agentSpan;
  await tracer.startActiveSpan('agent.turn', { kind: SpanKind.INTERNAL }, async (span) => {
    agentSpan = span.spanContext();
    try {
      const completion = await stack.openai({ fetch: tracedFetch }).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Capital of France?' }],
      });
      assert.equal(completion.choices[0].message.content, 'Paris.');
    } finally {
      span.end();
    }
  });
  await provider.forceFlush();

  await receiver.waitFor(
    (spans) => spans.some((s) => s.name === 'agent.turn') && spans.some((s) => s.kind === 3),
    "the agent's and tokentap's spans",
  );
  const agent = receiver.spans.find((s) => s.name === 'agent.turn');
  const proxy = receiver.spans.find((s) => s.resource['service.name'] === 'tokentap');
  assert.ok(proxy, `no tokentap span among ${JSON.stringify(receiver.spans)}`);
  assert.equal(agent.traceId, agentSpan.traceId);
  assert.equal(agent.spanId, agentSpan.spanId);
  assert.equal(proxy.traceId, agent.traceId, 'one trace');
  assert.equal(proxy.parentSpanId, agent.spanId, "tokentap's span is the agent span's child");
  assert.equal(proxy.kind, 3); // SPAN_KIND_CLIENT
  assert.equal(proxy.name, 'chat gpt-4o-mini');
  const attrs = Object.fromEntries(proxy.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
  assert.equal(attrs['gen_ai.provider.name'], 'openai');
  assert.equal(attrs['gen_ai.usage.input_tokens'], '20');
  assert.equal(attrs['tokentap.agent'], 'e2e-agent');

  // The provider saw one traceparent: tokentap's span, in the agent's trace.
  const upstream = await stack.fake.request(0);
  assert.equal(upstream.headers.traceparent, `00-${agent.traceId}-${proxy.spanId}-01`);

  // No API key in anything exported.
  const exported = JSON.stringify(receiver.spans);
  for (const secret of stack.secrets) assert.ok(!exported.includes(secret), 'a key was exported');
});
