// A scripted model for agent tool loops, and the checks that tokentap metered such a loop
// exactly. The model plays one conversation in OpenAI chat completions, OpenAI Responses or
// Anthropic Messages wire format: it reads the tool results the request carries, asks for the
// next round of tool calls, and once every round is answered replies with a text built from the
// results it was sent (so a framework that garbles a result gets a different final answer).
// Every reply is kept in `served` with what tokentap should count for it. A loop may expect one
// tool to fail (`failing`): its results must then come back as that format's tool error.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';

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

// The message of a call of the tool that fails.
export function toolError({ name }) {
  return `${name}: the service behind this tool is unavailable`;
}

// The final answer the model gives once it has every result, in the order it asked for them;
// with `failing`, that tool's results are its error messages.
export function finalAnswer(failing = null) {
  const results = ROUNDS.flat().map((c) => (c.name === failing ? toolError(c) : toolOutput(c)));
  return `Here is what I found. ${results.join('. ')}. Ride in Bergen.`;
}

export const FINAL_ANSWER = finalAnswer();

// How long each call of the script takes to run on the agent's side, in ms, by round.
export const TOOL_DELAYS_MS = [[200, 300], [400]];

function delayOf(call) {
  for (const [r, round] of ROUNDS.entries()) {
    const i = round.findIndex(
      (c) => c.name === call.name && isDeepStrictEqual(c.input, call.input),
    );
    if (i >= 0) return TOOL_DELAYS_MS[r][i];
  }
  throw new Error(`no such call in the script: ${JSON.stringify(call)}`);
}

// Tools as an agent runs them for real: each call takes its TOOL_DELAYS_MS (a timer), and calls
// of the tool named `failing` fail. run(call) resolves with { output, isError }; `calls`
// records every call, as makeTools() does.
export function makeTimedTools({ failing = null } = {}) {
  const calls = [];
  return {
    calls,
    async run({ name, input }) {
      calls.push({ name, input });
      await sleep(delayOf({ name, input }));
      if (name === failing) return { output: toolError({ name, input }), isError: true };
      return { output: toolOutput({ name, input }), isError: false };
    },
  };
}

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
    // An OpenAI tool result has no error flag: an error is a JSON object with `error`.
    errorResult: (message) => ({ text: JSON.stringify({ error: message }), isError: false }),
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
    errorResult: (message) => ({ text: JSON.stringify({ error: message }), isError: false }),
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
    errorResult: (message) => ({ text: message, isError: true }),
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
// replies name (a dated snapshot, as the real APIs answer); `failing`: the tool whose results
// must come back as errors (toolError(), in the format's error shape), if any. Hand `reply` to
// FakeProvider.respond(). A request the script cannot place (results it did not ask for, or
// that do not match the tools' outputs) is answered 400 and noted in `problems`.
export class ToolLoop {
  constructor({ format, model, failing = null }) {
    this.format = format;
    this.wire = FORMATS[format];
    this.model = model;
    this.failing = failing;
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
      text: final ? finalAnswer(this.failing) : null,
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
        for (const want of expected) {
          const got = results.find((r) => r.id === want.id);
          if (!got) return `no result for call ${want.id} (${want.name})`;
          if (got.text !== want.text) return `result of ${want.id} is ${JSON.stringify(got.text)}`;
          if (Boolean(got.isError) !== want.isError) {
            return `result of ${want.id} is ${want.isError ? 'not ' : ''}flagged is_error`;
          }
        }
        return round;
      }
      if (round === ROUNDS.length || this.callIds[round] === null) break;
      expected = expected.concat(
        ROUNDS[round].map((call, i) => ({
          id: this.callIds[round][i],
          name: call.name,
          ...(call.name === this.failing
            ? this.wire.errorResult(toolError(call))
            : { text: toolOutput(call), isError: false }),
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

  // The status of a result of `tool` in llm_tool_results_total.
  resultStatus(tool) {
    return tool === this.failing ? 'error' : 'success';
  }

  // The finish reason tokentap reports for a served reply.
  finishReason(reply) {
    return reply.toolCalls.length ? this.wire.finish.tools : this.wire.finish.answer;
  }
}

// Runs two loops against the scripted model in `format`: `plain(tools)`, without streaming, then
// `streamed(tools)`, each given fresh tools from `tools()` (makeTools by default) and bounded in
// time; `failing` is the ToolLoop's. Then asserts the provider got byte for byte what the client
// sent, on `path`, and that tokentap metered both loops exactly (assertLoopsMetered). Resolves
// with { metrics (the scrape that proved it), loops }.
export async function runPlainAndStreamedLoops(
  stack,
  { format, path, plain, streamed, failing = null, tools: make = makeTools },
) {
  const served = MODELS[FORMATS[format].provider].served;
  const loops = [0, 1].map(() => new ToolLoop({ format, model: served, failing }));
  const tools = [make(), make()];
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
  const metrics = await assertLoopsMetered(stack, { model, loops, tools });
  return { metrics, loops };
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
  // The results of round r arrive in the newest turn of request r + 1 (the metric has no
  // provider label: summed over every loop of the stack).
  const results = served.flatMap((s) =>
    s.round === 0
      ? []
      : ROUNDS[s.round - 1].map((call) => `${call.name} ${s.loop.resultStatus(call.name)}`),
  );
  assert.deepEqual(
    m.series('llm_tool_results_total').sort((a, b) =>
      `${a.tool} ${a.status}`.localeCompare(`${b.tool} ${b.status}`),
    ),
    Object.entries(countNames(results))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => {
        const [tool, status] = key.split(' ');
        return { agent: AGENT, tool, status, value };
      }),
    'llm_tool_results_total',
  );
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

// Asserts llm_tool_duration_seconds for loops run by an agent that runs a round's tools one
// after the other, each taking its TOOL_DELAYS_MS (makeTimedTools): every result of round r is
// sent once all of round r ran, so its duration is at least the round's total delay, and at
// most the time the provider saw pass between starting its answer to the request that asked
// for it and receiving the one that carries it (tokentap sits between them). `m` is a scrape
// taken after the loops (assertLoopsMetered's). Resolves with { tool: { count, sum, min, max } }.
export function assertToolDurationsMetered(stack, m, loops) {
  // tokentap's clock counts whole milliseconds, and a timer may fire up to 1 ms early.
  const slackMs = 2;
  const served = loops.flatMap((loop) => loop.served);
  const expected = {};
  for (const [i, reply] of served.entries()) {
    if (reply.round === 0) continue;
    const asked = stack.fake.requests[i - 1];
    const carrying = stack.fake.requests[i];
    const gapMs = carrying.receivedAt - asked.repliedAt;
    const delayMs = TOOL_DELAYS_MS[reply.round - 1].reduce((a, b) => a + b, 0);
    for (const call of ROUNDS[reply.round - 1]) {
      const e = (expected[call.name] ??= { count: 0, min: 0, max: 0 });
      e.count += 1;
      e.min += (delayMs - slackMs) / 1000;
      e.max += (gapMs + slackMs) / 1000;
    }
  }
  const out = {};
  for (const [tool, e] of Object.entries(expected)) {
    const h = m.histogram('llm_tool_duration_seconds', { agent: AGENT, tool });
    assert.equal(h.count, e.count, `llm_tool_duration_seconds_count of ${tool}`);
    assert.ok(
      h.sum >= e.min && h.sum <= e.max,
      `llm_tool_duration_seconds_sum of ${tool} is ${h.sum}, not within [${e.min}, ${e.max}]`,
    );
    // Every call takes at least 200 ms: no observation falls in the buckets up to 0.1 s.
    const under = h.buckets.find((b) => b.le === 0.1)?.value;
    assert.equal(under, 0, `${tool}: an observation under 0.1 s`);
    assert.equal(h.buckets.at(-1).value, e.count, `${tool}: +Inf bucket`);
    out[tool] = { count: h.count, sum: h.sum, min: e.min, max: e.max };
  }
  assert.deepEqual(
    m.find('llm_tool_duration_seconds_count').map((s) => s.labels.tool).sort(),
    Object.keys(expected).sort(),
    'llm_tool_duration_seconds: one series per tool run',
  );
  return out;
}
