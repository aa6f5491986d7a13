// A scripted model for agent tool loops, and the checks that tokentap metered such a loop
// exactly. The model plays one conversation in OpenAI chat completions, OpenAI Responses or
// Anthropic Messages wire format: it reads the tool results the request carries, asks for the
// next round of tool calls, and once every round is answered replies with a text built from the
// results it was sent (so a framework that garbles a result gets a different final answer).
// Every reply is kept in `served` with what tokentap should count for it.
import assert from 'node:assert/strict';

import { within } from './tokentap.mjs';
import { anthropic, ids, openai, responses } from './wire.mjs';

export const AGENT = 'e2e-agent';

// The model a framework asks for (tokentap's label) and the dated snapshot the provider answers.
export const MODELS = {
  openai: { requested: 'gpt-4o-mini', served: 'gpt-4o-mini-2024-07-18' },
  anthropic: { requested: 'claude-haiku-4-5', served: 'claude-haiku-4-5-20251001' },
};

export const PROMPT =
  'Bike ride in Oslo or Bergen this afternoon? Check the weather, then the time.';

// The tool rounds the model asks for: two parallel calls, then one.
export const ROUNDS = [
  [
    { name: 'get_weather', input: { city: 'Oslo' } },
    { name: 'get_weather', input: { city: 'Bergen' } },
  ],
  [{ name: 'get_time', input: { tz: 'Europe/Oslo' } }],
];

export const TOOL_DESCRIPTIONS = {
  get_weather: 'Current weather for a city',
  get_time: 'Local time in an IANA time zone',
};

const WEATHER = { Oslo: 'Oslo: 4 °C, light rain', Bergen: 'Bergen: 11 °C, sunny' };
const TIMES = { 'Europe/Oslo': '14:05 in Europe/Oslo' };

// The tools as the frameworks run them. Each call is recorded in `calls`.
export function makeTools() {
  const calls = [];
  return {
    calls,
    get_weather: ({ city }) => {
      calls.push({ name: 'get_weather', input: { city } });
      return WEATHER[city] ?? `${city}: unknown city`;
    },
    get_time: ({ tz }) => {
      calls.push({ name: 'get_time', input: { tz } });
      return TIMES[tz] ?? `${tz}: unknown time zone`;
    },
  };
}

// What a tool returns for a call of the script.
function toolOutput({ name, input }) {
  return name === 'get_weather' ? WEATHER[input.city] : TIMES[input.tz];
}

// The final answer the model gives once it has every result, in the order it asked for them.
export const FINAL_ANSWER = `Here is what I found. ${ROUNDS.flat().map(toolOutput).join('. ')}. Ride in Bergen.`;

// The text of a tool result as each wire format carries it: a string, or text blocks/parts.
function resultText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((part) => part.text ?? '').join('');
  return JSON.stringify(content);
}

// Per wire format: how a request carries tool results, and how the model answers.
const FORMATS = {
  chat: {
    provider: 'openai',
    operation: 'chat_completions',
    finish: { tools: 'tool_calls', answer: 'stop' },
    results: (body) =>
      (body.messages ?? [])
        .filter((m) => m.role === 'tool')
        .map((m) => ({ id: m.tool_call_id, text: resultText(m.content) })),
    callId: ids.toolCall,
    usage: (round) => {
      const cached = round === 0 ? 0 : 256 * round;
      return {
        wire: openai.usage(420 + 150 * round, 21 + 9 * round, { cached }),
        tokens: { input: 420 + 150 * round, output: 21 + 9 * round, cache_read: cached },
      };
    },
    reply({ body, model, text, calls, usage, requestId }) {
      const headers = openai.headers(requestId);
      const toolCalls = calls.length
        ? calls.map((c) => ({ id: c.id, name: c.name, arguments: JSON.stringify(c.input) }))
        : null;
      if (body.stream !== true) {
        return { headers, json: openai.completion({ model, content: text, toolCalls, usage }) };
      }
      return { headers, sse: openai.streamFor(body, { model, text, toolCalls, usage }) };
    },
  },
  responses: {
    provider: 'openai',
    operation: 'responses',
    // tokentap derives these from the output items (README, finish reasons), not the status.
    finish: { tools: 'tool_calls', answer: 'stop' },
    results: (body) =>
      (Array.isArray(body.input) ? body.input : [])
        .filter((item) => item.type === 'function_call_output')
        .map((item) => ({ id: item.call_id, text: resultText(item.output) })),
    callId: ids.toolCall,
    usage: (round) => {
      const [input, output, cached, reasoning] = [
        380 + 140 * round,
        34 + 6 * round,
        round * 128,
        16 + 8 * round,
      ];
      return {
        wire: responses.usage(input, output, { cached, reasoning }),
        tokens: { input, output, cache_read: cached, reasoning },
      };
    },
    reply({ body, model, text, calls, usage, requestId }) {
      const output = responses.output({
        text,
        toolCalls: calls.map((c) => ({
          callId: c.id,
          name: c.name,
          arguments: JSON.stringify(c.input),
        })),
      });
      const response = responses.response({ model, output, usage });
      const headers = openai.headers(requestId);
      if (body.stream !== true) return { headers, json: response };
      return { headers, sse: responses.streamEvents(response) };
    },
  },
  anthropic: {
    provider: 'anthropic',
    operation: 'messages',
    finish: { tools: 'tool_use', answer: 'end_turn' },
    results: (body) =>
      (body.messages ?? [])
        .filter((m) => m.role === 'user' && Array.isArray(m.content))
        .flatMap((m) => m.content.filter((block) => block.type === 'tool_result'))
        .map((block) => ({
          id: block.tool_use_id,
          text: resultText(block.content),
          isError: block.is_error === true,
        })),
    callId: ids.toolUse,
    usage: (round) => {
      const [input, output] = [35 + 12 * round, 48 + 5 * round];
      const cacheWrite = round === 0 ? 1536 : 0;
      const cacheRead = round === 0 ? 0 : 1536;
      return {
        wire: anthropic.usage(input, output, { cacheCreation: cacheWrite, cacheRead }),
        tokens: {
          input: input + cacheWrite + cacheRead,
          output,
          cache_read: cacheRead,
          cache_write: cacheWrite,
        },
      };
    },
    reply({ body, model, text, calls, usage, requestId }) {
      const content = calls.map((c) => ({
        type: 'tool_use',
        id: c.id,
        name: c.name,
        input: c.input,
      }));
      if (text !== null) content.unshift({ type: 'text', text });
      const message = anthropic.message({ model, content, usage });
      const headers = anthropic.headers(requestId);
      if (body.stream !== true) return { headers, json: message };
      return { headers, sse: anthropic.streamEvents(message) };
    },
  },
};

const requestIdOf = { openai: ids.openaiRequest, anthropic: ids.anthropicRequest };

// One scripted conversation. `format`: chat | responses | anthropic; `model`: the model the
// replies name (a dated snapshot, as the real APIs answer). Hand `reply` to
// FakeProvider.respond(). A request the script cannot place (results it did not ask for, or
// that do not match the tools' outputs) is answered 400 and noted in `problems`.
export class ToolLoop {
  constructor({ format, model }) {
    this.format = format;
    this.wire = FORMATS[format];
    this.model = model;
    this.served = [];
    this.problems = [];
    // The call ids handed out per round, so results can be matched to calls.
    this.callIds = ROUNDS.map(() => null);
    this.reply = (request) => this.#reply(request);
  }

  #reply(request) {
    const body = request.json();
    const results = this.wire.results(body);
    const round = this.#place(results);
    if (typeof round === 'string') {
      this.problems.push(`request ${this.served.length}: ${round}`);
      return { status: 400, json: { error: { message: `tool loop script: ${round}` } } };
    }
    const final = round === ROUNDS.length;
    const calls = final ? [] : ROUNDS[round].map((call) => ({ ...call, id: this.wire.callId() }));
    if (!final) this.callIds[round] = calls.map((c) => c.id);
    const { wire, tokens } = this.wire.usage(round);
    const requestId = requestIdOf[this.wire.provider]();
    this.served.push({
      round,
      stream: body.stream === true,
      tokens,
      toolCalls: calls.map((c) => c.name),
      requestId,
    });
    return this.wire.reply({
      body,
      model: this.model,
      text: final ? FINAL_ANSWER : null,
      calls,
      usage: wire,
      requestId,
    });
  }

  // The round a request with these results is in, or why it fits none.
  #place(results) {
    let expected = [];
    for (let round = 0; round <= ROUNDS.length; round += 1) {
      if (results.length === expected.length) {
        for (const [i, want] of expected.entries()) {
          const got = results.find((r) => r.id === want.id);
          if (!got) return `no result for call ${want.id} (${want.name})`;
          if (got.text !== want.text) return `result of ${want.id} is ${JSON.stringify(got.text)}`;
          if (got.isError) return `result ${i} of ${want.id} is flagged is_error`;
        }
        return round;
      }
      if (round === ROUNDS.length || this.callIds[round] === null) break;
      expected = expected.concat(
        ROUNDS[round].map((call, i) => ({
          id: this.callIds[round][i],
          name: call.name,
          text: toolOutput(call),
        })),
      );
    }
    return `${results.length} tool results fit no round: ${JSON.stringify(results)}`;
  }

  get provider() {
    return this.wire.provider;
  }

  get operation() {
    return this.wire.operation;
  }

  // The finish reason tokentap reports for a served reply.
  finishReason(reply) {
    return reply.toolCalls.length ? this.wire.finish.tools : this.wire.finish.answer;
  }
}

// Runs two loops against the scripted model in `format`: `plain(tools)`, without streaming, then
// `streamed(tools)`, each given fresh tools from makeTools() and bounded in time. Then asserts
// the provider got byte for byte what the client sent, on `path`, and that tokentap metered both
// loops exactly (assertLoopsMetered).
export async function runPlainAndStreamedLoops(stack, { format, path, plain, streamed }) {
  const served = MODELS[FORMATS[format].provider].served;
  const loops = [new ToolLoop({ format, model: served }), new ToolLoop({ format, model: served })];
  const tools = [makeTools(), makeTools()];
  stack.fake.respond(loops[0].reply);
  await within(plain(tools[0]), 20_000, 'the loop without streaming');
  stack.fake.respond(loops[1].reply);
  await within(streamed(tools[1]), 20_000, 'the streamed loop');

  const steps = ROUNDS.length + 1;
  assert.deepEqual(
    stack.sdkRequests.map((r) => r.json().stream === true),
    [...Array(steps).fill(false), ...Array(steps).fill(true)],
    'one request a step, the second loop streamed',
  );
  assert.equal(stack.sdkRequests.length, stack.fake.requests.length);
  for (const [i, upstream] of stack.fake.requests.entries()) {
    assert.equal(upstream.path, path);
    await stack.assertForwarded(stack.sdkRequests[i], upstream);
  }
  const model = MODELS[FORMATS[format].provider].requested;
  return assertLoopsMetered(stack, { model, loops, tools });
}

function addTokens(total, tokens) {
  for (const [type, n] of Object.entries(tokens)) {
    if (n > 0) total[type] = (total[type] ?? 0) + n;
  }
  return total;
}

function countNames(names) {
  const out = {};
  for (const name of names) out[name] = (out[name] ?? 0) + 1;
  return out;
}

// Asserts the framework ran every tool call the script asked for, with its arguments, and that
// tokentap metered each of the loops exactly: one access-log line per request the provider
// answered, with tokentap's request id, the provider's, the tokens and tool calls served; and
// the llm_* series summed over the loops. `model` is the model the framework asked for (the
// label); `loops` every ToolLoop served by this stack, in order.
export async function assertLoopsMetered(stack, { model, loops, tools = [] }) {
  for (const loop of loops) assert.deepEqual(loop.problems, [], 'the scripted model was confused');
  for (const t of tools) {
    assert.deepEqual(t.calls, ROUNDS.flat(), 'the framework ran each tool call once');
  }
  const served = loops.flatMap((loop) => loop.served.map((s) => ({ ...s, loop })));
  assert.equal(stack.fake.requests.length, served.length);
  assert.deepEqual(
    loops.map((loop) => loop.served.map((s) => s.round)),
    loops.map(() => [...ROUNDS.keys(), ROUNDS.length]),
    'each loop took every round once, in order',
  );

  const tokentapIds = new Set();
  for (const [i, upstream] of stack.fake.requests.entries()) {
    const { loop, ...reply } = served[i];
    const entry = await stack.accessLogOf(upstream);
    assert.ok(!tokentapIds.has(entry.request_id), `request id ${entry.request_id} used twice`);
    tokentapIds.add(entry.request_id);
    assert.equal(entry.upstream_request_id, reply.requestId, `request ${i}: provider request id`);
    assert.equal(entry.provider, loop.provider);
    assert.equal(entry.operation, loop.operation);
    assert.equal(entry.model, model);
    assert.equal(entry.response_model, loop.model);
    assert.equal(entry.status, 200);
    assert.equal(entry.stream, reply.stream, `request ${i}: stream`);
    assert.equal(entry.usage_source, 'reported', `request ${i}: usage_source`);
    assert.deepEqual(
      entry.tokens,
      { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0, ...reply.tokens },
      `request ${i}: tokens`,
    );
    assert.deepEqual(entry.tool_calls, countNames(reply.toolCalls), `request ${i}: tool calls`);
  }
  assert.equal(stack.tokentap.accessLog().length, served.length, 'one access-log line a request');

  const m = await stack.waitForLlmRequests(served.length);
  for (const provider of new Set(served.map((s) => s.loop.provider))) {
    const replies = served.filter((s) => s.loop.provider === provider);
    const labels = { agent: AGENT, provider, model };
    assert.deepEqual(
      m.byLabel('llm_requests_total', 'operation', { ...labels, code: '200', error_type: 'none' }),
      countNames(replies.map((s) => s.loop.operation)),
      `llm_requests_total of ${provider}`,
    );
    assert.deepEqual(
      m.byLabel('llm_tokens_total', 'type', labels),
      replies.reduce((total, s) => addTokens(total, s.tokens), {}),
      `llm_tokens_total of ${provider} by type`,
    );
    // Matched on the labels that matter: a series may carry more (the kind of tool call).
    const calls = m.find('llm_tool_calls_total', labels);
    assert.deepEqual(
      sumBy(calls, 'tool'),
      countNames(replies.flatMap((s) => s.toolCalls)),
      `llm_tool_calls_total of ${provider} by tool`,
    );
    for (const s of calls) {
      assert.ok([undefined, 'function'].includes(s.labels.kind), `kind of ${JSON.stringify(s)}`);
    }
    assert.deepEqual(
      m.byLabel('llm_finish_reasons_total', 'reason', labels),
      countNames(replies.map((s) => s.loop.finishReason(s))),
      `llm_finish_reasons_total of ${provider}`,
    );
  }
  if (served.every((s) => s.loop.provider === 'anthropic')) {
    // The results of round r arrive in the newest user turn of request r + 1.
    const results = served.flatMap((s) => (s.round === 0 ? [] : ROUNDS[s.round - 1]));
    assert.deepEqual(
      m.series('llm_tool_results_total').sort((a, b) => a.tool.localeCompare(b.tool)),
      Object.entries(countNames(results.map((call) => call.name)))
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([tool, value]) => ({ agent: AGENT, tool, status: 'success', value })),
      'llm_tool_results_total',
    );
  }
  assert.equal(m.sum('llm_requests_total'), served.length);
  assert.equal(m.sum('llm_usage_missing_total'), 0);
  assert.equal(m.sum('llm_parse_errors_total'), 0);
  return m;
}

// { value of label `by`: summed value } over `samples`.
export function sumBy(samples, by) {
  const out = {};
  for (const s of samples) out[s.labels[by]] = (out[s.labels[by]] ?? 0) + s.value;
  return out;
}
