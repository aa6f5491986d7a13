// Issue 15's tool loop with the official SDKs: an agent written against `openai` (chat
// completions and Responses) and `@anthropic-ai/sdk` asks the scripted model (tool_loop.mjs),
// runs each tool it asks for one after the other, each taking a known time (TOOL_DELAYS_MS), and
// sends the results back; get_time fails and is reported as that API's tool error (Anthropic
// is_error, an OpenAI JSON result with a top-level "error"). Once without streaming, once
// streamed. tokentap must meter every step, count the results by status, and time each tool
// from the end of the response that asked for it to the request that carries its result. With a
// session header both loops are one conversation, so every call of the second repeats one of
// the first (llm_session_tool_repeats_total, what LLMToolLoop watches).
import assert from 'node:assert/strict';
import test from 'node:test';

import { startStack } from './harness.mjs';
import {
  AGENT,
  MODELS,
  PROMPT,
  ROUNDS,
  TOOL_DESCRIPTIONS,
  assertToolDurationsMetered,
  finalAnswer,
  makeTimedTools,
  runPlainAndStreamedLoops,
} from './tool_loop.mjs';

const FAILING = 'get_time';
const ANSWER = finalAnswer(FAILING);

const PARAMETERS = {
  get_weather: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  get_time: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] },
};
const TOOL_NAMES = Object.keys(PARAMETERS);

// The text an OpenAI agent sends back for a failed tool: the API has no error flag.
function openaiResult({ output, isError }) {
  return isError ? JSON.stringify({ error: output }) : output;
}

// Chat completions: the assistant message with its tool calls goes back as it came, then one
// `tool` message per call.
async function chatAgent(client, tools, { stream }) {
  const messages = [{ role: 'user', content: PROMPT }];
  const functions = TOOL_NAMES.map((name) => ({
    type: 'function',
    function: { name, description: TOOL_DESCRIPTIONS[name], parameters: PARAMETERS[name] },
  }));
  for (let step = 0; step <= ROUNDS.length; step += 1) {
    const request = { model: MODELS.openai.requested, messages, tools: functions };
    // Streamed, the agent asks for the usage chunk itself, as agents that track tokens do.
    const completion = stream
      ? await client.chat.completions
          .stream({ ...request, stream_options: { include_usage: true } })
          .finalChatCompletion()
      : await client.chat.completions.create(request);
    const message = completion.choices[0].message;
    if (!message.tool_calls?.length) return message.content;
    messages.push({
      role: 'assistant',
      content: message.content,
      tool_calls: message.tool_calls.map((c) => ({
        id: c.id,
        type: 'function',
        function: { name: c.function.name, arguments: c.function.arguments },
      })),
    });
    for (const call of message.tool_calls) {
      const result = await tools.run({
        name: call.function.name,
        input: JSON.parse(call.function.arguments),
      });
      messages.push({ role: 'tool', tool_call_id: call.id, content: openaiResult(result) });
    }
  }
  throw new Error('the model never answered');
}

function responseText(response) {
  return response.output
    .filter((item) => item.type === 'message')
    .flatMap((item) => item.content)
    .filter((part) => part.type === 'output_text')
    .map((part) => part.text)
    .join('');
}

// Responses: the function_call items go back in the input, then a function_call_output each.
async function responsesAgent(client, tools, { stream }) {
  const input = [{ role: 'user', content: PROMPT }];
  const functions = TOOL_NAMES.map((name) => ({
    type: 'function',
    name,
    description: TOOL_DESCRIPTIONS[name],
    parameters: PARAMETERS[name],
    strict: false,
  }));
  for (let step = 0; step <= ROUNDS.length; step += 1) {
    const request = { model: MODELS.openai.requested, input, tools: functions };
    let response = null;
    if (stream) {
      for await (const event of await client.responses.create({ ...request, stream: true })) {
        if (event.type === 'response.completed') response = event.response;
      }
      assert.ok(response, 'the stream ended without response.completed');
    } else {
      response = await client.responses.create(request);
    }
    const calls = response.output.filter((item) => item.type === 'function_call');
    if (calls.length === 0) return responseText(response);
    for (const c of calls) {
      const { call_id, name, arguments: args } = c;
      input.push({ type: 'function_call', call_id, name, arguments: args });
    }
    for (const c of calls) {
      const result = await tools.run({ name: c.name, input: JSON.parse(c.arguments) });
      const output = openaiResult(result);
      input.push({ type: 'function_call_output', call_id: c.call_id, output });
    }
  }
  throw new Error('the model never answered');
}

// Messages: the assistant turn goes back whole, then one user turn of tool_result blocks.
async function anthropicAgent(client, tools, { stream }) {
  const messages = [{ role: 'user', content: PROMPT }];
  const functions = TOOL_NAMES.map((name) => ({
    name,
    description: TOOL_DESCRIPTIONS[name],
    input_schema: PARAMETERS[name],
  }));
  for (let step = 0; step <= ROUNDS.length; step += 1) {
    const request = {
      model: MODELS.anthropic.requested,
      max_tokens: 1024,
      messages,
      tools: functions,
    };
    const message = stream
      ? await client.messages.stream(request).finalMessage()
      : await client.messages.create(request);
    const uses = message.content.filter((block) => block.type === 'tool_use');
    if (uses.length === 0) {
      return message.content
        .filter((block) => block.type === 'text')
        .map((block) => block.text)
        .join('');
    }
    messages.push({ role: 'assistant', content: message.content });
    const results = [];
    for (const use of uses) {
      const { output, isError } = await tools.run({ name: use.name, input: use.input });
      results.push({
        type: 'tool_result',
        tool_use_id: use.id,
        content: output,
        ...(isError ? { is_error: true } : {}),
      });
    }
    messages.push({ role: 'user', content: results });
  }
  throw new Error('the model never answered');
}

// Both loops, then the tool metrics: results by status, each tool's time, and the repeats when
// the client sends `session` as x-session-id.
async function agentLoops(stack, { format, path, agent, session = null }) {
  const { metrics, loops } = await runPlainAndStreamedLoops(stack, {
    format,
    path,
    failing: FAILING,
    tools: () => makeTimedTools({ failing: FAILING }),
    plain: async (tools) => assert.equal(await agent(tools, { stream: false }), ANSWER),
    streamed: async (tools) => assert.equal(await agent(tools, { stream: true }), ANSWER),
  });
  // Two loops: get_weather twice per loop, get_time (failing) once; none "unknown".
  assert.deepEqual(
    metrics
      .series('llm_tool_results_total')
      .map(({ tool, status, value }) => [tool, status, value])
      .sort(),
    [
      ['get_time', 'error', 2],
      ['get_weather', 'success', 4],
    ],
  );
  const durations = assertToolDurationsMetered(stack, metrics, loops);
  assert.deepEqual(Object.keys(durations).sort(), ['get_time', 'get_weather']);
  // Without a session header there is no conversation to repeat a call in.
  const repeats = session ? { get_time: 1, get_weather: 2 } : {};
  assert.deepEqual(
    metrics.byLabel('llm_session_tool_repeats_total', 'tool', { agent: AGENT }),
    repeats,
    'llm_session_tool_repeats_total',
  );
}

test('OpenAI chat completions: create() and stream() loops, a failed tool', async (t) => {
  const stack = await startStack(t);
  const client = stack.openai();
  await agentLoops(stack, {
    format: 'chat',
    path: '/v1/chat/completions',
    agent: (tools, options) => chatAgent(client, tools, options),
  });
});

test('OpenAI Responses: create() and stream: true loops in one session, repeats', async (t) => {
  const stack = await startStack(t);
  const session = 'trip-planner-responses';
  const client = stack.openai({ defaultHeaders: { 'x-session-id': session } });
  await agentLoops(stack, {
    format: 'responses',
    path: '/v1/responses',
    agent: (tools, options) => responsesAgent(client, tools, options),
    session,
  });
});

test('Anthropic Messages: create() and stream() loops in one session, is_error', async (t) => {
  const stack = await startStack(t);
  const session = 'trip-planner-messages';
  const client = stack.anthropic({ defaultHeaders: { 'x-session-id': session } });
  await agentLoops(stack, {
    format: 'anthropic',
    path: '/v1/messages',
    agent: (tools, options) => anthropicAgent(client, tools, options),
    session,
  });
});
