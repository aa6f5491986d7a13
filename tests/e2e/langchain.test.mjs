// LangChain JS chat models (@langchain/openai, @langchain/anthropic) running the tool loop an
// agent runs: by hand (bindTools, invoke or stream, run the requested tools, send back
// ToolMessages, until the model answers) and as LangChain's own agent (createAgent from
// `langchain`, a LangGraph graph). Against a scripted model that asks for two rounds of tool
// calls; the answer must reach LangChain intact, the provider must get what the client sent, and
// tokentap must meter every step exactly.
import assert from 'node:assert/strict';
import test from 'node:test';

import { ChatAnthropic } from '@langchain/anthropic';
import { AIMessageChunk, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { createAgent } from 'langchain';
import { z } from 'zod';

import { startStack } from './harness.mjs';
import {
  FINAL_ANSWER,
  MODELS,
  PROMPT,
  ROUNDS,
  TOOL_DESCRIPTIONS,
  runPlainAndStreamedLoops,
} from './tool_loop.mjs';

function langchainTools(impl) {
  return [
    tool(async (input) => impl.get_weather(input), {
      name: 'get_weather',
      description: TOOL_DESCRIPTIONS.get_weather,
      schema: z.object({ city: z.string() }),
    }),
    tool(async (input) => impl.get_time(input), {
      name: 'get_time',
      description: TOOL_DESCRIPTIONS.get_time,
      schema: z.object({ tz: z.string() }),
    }),
  ];
}

// One agent turn the way LangChain's tool-calling agents do it by hand: ask the model, run the
// tools it calls, hand their ToolMessages back, until it answers without tools. `stream`: read
// each step with .stream() and concatenate the chunks instead of .invoke().
async function toolLoop(model, impl, { stream }) {
  const tools = langchainTools(impl);
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  const bound = model.bindTools(tools);
  const messages = [new HumanMessage(PROMPT)];
  const steps = [];
  for (let step = 0; step <= ROUNDS.length + 2; step += 1) {
    let reply;
    if (stream) {
      const chunks = [];
      for await (const chunk of await bound.stream(messages)) chunks.push(chunk);
      assert.ok(chunks.length > 1, `step ${step} arrived in chunks`);
      reply = chunks.reduce((whole, chunk) => whole.concat(chunk));
    } else {
      reply = await bound.invoke(messages);
    }
    messages.push(reply);
    steps.push(reply);
    if (!reply.tool_calls?.length) break;
    for (const call of reply.tool_calls) messages.push(await byName[call.name].invoke(call));
  }
  assert.deepEqual(
    steps.map((reply) => (reply.tool_calls ?? []).map((call) => [call.name, call.args])),
    [...ROUNDS.map((round) => round.map((call) => [call.name, call.input])), []],
  );
  assert.equal(steps.at(-1).text, FINAL_ANSWER);
  return steps;
}

// An invoke loop, then a stream loop, with `model` against the scripted model in `format`.
function langchainLoops(stack, { format, path, model }) {
  return runPlainAndStreamedLoops(stack, {
    format,
    path,
    plain: (tools) => toolLoop(model, tools, { stream: false }),
    streamed: (tools) => toolLoop(model, tools, { stream: true }),
  });
}

// The same turn run by LangChain's agent (createAgent, a LangGraph graph): invoke, or stream in
// "messages" mode, which makes the agent stream each model call.
async function agentTurn(model, impl, { stream }) {
  const agent = createAgent({ model, tools: langchainTools(impl) });
  const input = { messages: [{ role: 'user', content: PROMPT }] };
  if (!stream) {
    const { messages } = await agent.invoke(input);
    assert.equal(messages.filter((m) => ToolMessage.isInstance(m)).length, ROUNDS.flat().length);
    assert.equal(messages.at(-1).text, FINAL_ANSWER);
    return;
  }
  const pieces = [];
  for await (const [chunk] of await agent.stream(input, { streamMode: 'messages' })) {
    if (AIMessageChunk.isInstance(chunk) && chunk.text) pieces.push(chunk.text);
  }
  assert.ok(pieces.length > 1, 'the answer arrived in pieces');
  assert.equal(pieces.join(''), FINAL_ANSWER);
}

function chatOpenAI(stack, options = {}) {
  return new ChatOpenAI({
    model: MODELS.openai.requested,
    apiKey: stack.openaiKey,
    maxRetries: 0,
    configuration: { baseURL: `${stack.tokentap.url}/v1`, fetch: stack.fetch },
    ...options,
  });
}

function chatAnthropic(stack) {
  return new ChatAnthropic({
    model: MODELS.anthropic.requested,
    apiKey: stack.anthropicKey,
    anthropicApiUrl: stack.tokentap.url,
    maxRetries: 0,
    clientOptions: { fetch: stack.fetch },
  });
}

test('ChatOpenAI: bindTools loops with invoke and with stream (chat completions)', async (t) => {
  const stack = await startStack(t);
  await langchainLoops(stack, {
    format: 'chat',
    path: '/v1/chat/completions',
    model: chatOpenAI(stack),
  });
});

test('ChatOpenAI with useResponsesApi: bindTools loops with invoke and with stream', async (t) => {
  const stack = await startStack(t);
  await langchainLoops(stack, {
    format: 'responses',
    path: '/v1/responses',
    model: chatOpenAI(stack, { useResponsesApi: true }),
  });
});

test('ChatAnthropic: bindTools loops with invoke and with stream, tool results metered', async (t) => {
  const stack = await startStack(t);
  await langchainLoops(stack, {
    format: 'anthropic',
    path: '/v1/messages',
    model: chatAnthropic(stack),
  });
});

for (const { name, format, path, model } of [
  { name: 'ChatOpenAI', format: 'chat', path: '/v1/chat/completions', model: chatOpenAI },
  { name: 'ChatAnthropic', format: 'anthropic', path: '/v1/messages', model: chatAnthropic },
]) {
  test(`createAgent (LangGraph) with ${name}: invoke and stream`, async (t) => {
    const stack = await startStack(t);
    const chatModel = model(stack);
    await runPlainAndStreamedLoops(stack, {
      format,
      path,
      plain: (tools) => agentTurn(chatModel, tools, { stream: false }),
      streamed: (tools) => agentTurn(chatModel, tools, { stream: true }),
    });
  });
}
