// The Vercel AI SDK (`ai` with @ai-sdk/openai and @ai-sdk/anthropic) running multi-step tool
// loops through tokentap, as agents built on it do: generateText and streamText with tools and
// stopWhen, against a scripted model that asks for two rounds of tool calls and then answers
// from the results. The answer must reach the SDK intact, the provider must get what the SDK
// sent, and tokentap must meter every step exactly.
import assert from 'node:assert/strict';
import test from 'node:test';

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

import { startStack } from './harness.mjs';
import {
  FINAL_ANSWER,
  PROMPT,
  ROUNDS,
  TOOL_DESCRIPTIONS,
  ToolLoop,
  assertLoopsMetered,
  makeTools,
} from './tool_loop.mjs';
import { within } from './tokentap.mjs';

const OPENAI_MODEL = 'gpt-4o-mini';
const OPENAI_SERVED = 'gpt-4o-mini-2024-07-18';
const ANTHROPIC_MODEL = 'claude-sonnet-4-5';
const ANTHROPIC_SERVED = 'claude-sonnet-4-5-20250929';
const STEPS = ROUNDS.length + 1;

function aiTools(impl) {
  return {
    get_weather: tool({
      description: TOOL_DESCRIPTIONS.get_weather,
      inputSchema: z.object({ city: z.string() }),
      execute: async (input) => impl.get_weather(input),
    }),
    get_time: tool({
      description: TOOL_DESCRIPTIONS.get_time,
      inputSchema: z.object({ tz: z.string() }),
      execute: async (input) => impl.get_time(input),
    }),
  };
}

function openaiProvider(stack) {
  return createOpenAI({
    baseURL: `${stack.tokentap.url}/v1`,
    apiKey: stack.openaiKey,
    fetch: stack.fetch,
  });
}

function anthropicProvider(stack) {
  return createAnthropic({
    baseURL: `${stack.tokentap.url}/v1`,
    apiKey: stack.anthropicKey,
    fetch: stack.fetch,
  });
}

// A generateText loop; resolves with its result once the model has answered.
async function generateLoop(model, tools) {
  const result = await within(
    generateText({
      model,
      tools: aiTools(tools),
      stopWhen: stepCountIs(STEPS + 2),
      prompt: PROMPT,
      maxRetries: 0,
    }),
    20_000,
    'generateText',
  );
  assert.equal(result.text, FINAL_ANSWER);
  assert.equal(result.steps.length, STEPS);
  assert.deepEqual(
    result.steps.map((step) => step.toolCalls.map((call) => [call.toolName, call.input])),
    [...ROUNDS.map((round) => round.map((call) => [call.name, call.input])), []],
  );
  assert.equal(result.finishReason, 'stop');
  return result;
}

// A streamText loop: the text arrives in pieces through textStream.
async function streamLoop(model, tools) {
  const errors = [];
  const result = streamText({
    model,
    tools: aiTools(tools),
    stopWhen: stepCountIs(STEPS + 2),
    prompt: PROMPT,
    maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  const deltas = [];
  await within(
    (async () => {
      for await (const delta of result.textStream) deltas.push(delta);
    })(),
    20_000,
    'streamText',
  );
  assert.deepEqual(errors, []);
  assert.ok(deltas.length > 1, 'the answer arrived in pieces');
  assert.equal(deltas.join(''), FINAL_ANSWER);
  assert.equal(await result.text, FINAL_ANSWER);
  const steps = await result.steps;
  assert.equal(steps.length, STEPS);
  assert.deepEqual(
    steps.map((step) => step.toolCalls.map((call) => call.toolName)),
    [...ROUNDS.map((round) => round.map((call) => call.name)), []],
  );
  return result;
}

// Runs a generateText loop and then a streamText loop on `model` against the scripted model in
// `format`, and asserts the provider got byte for byte what the SDK sent, on `path`, and that
// tokentap metered both loops exactly. `model.modelId` is the label tokentap must use.
async function bothLoops(stack, { format, served, model, path }) {
  const loops = [new ToolLoop({ format, model: served }), new ToolLoop({ format, model: served })];
  const tools = [makeTools(), makeTools()];
  stack.fake.respond(loops[0].reply);
  await generateLoop(model, tools[0]);
  stack.fake.respond(loops[1].reply);
  await streamLoop(model, tools[1]);

  assert.deepEqual(
    stack.sdkRequests.map((r) => r.json().stream === true),
    [false, false, false, true, true, true],
  );
  assert.equal(stack.sdkRequests.length, stack.fake.requests.length);
  for (const [i, upstream] of stack.fake.requests.entries()) {
    assert.equal(upstream.path, path);
    await stack.assertForwarded(stack.sdkRequests[i], upstream);
  }
  await assertLoopsMetered(stack, { model: model.modelId, loops, tools });
}

test('OpenAI chat completions: generateText and streamText tool loops', async (t) => {
  const stack = await startStack(t);
  await bothLoops(stack, {
    format: 'chat',
    served: OPENAI_SERVED,
    model: openaiProvider(stack).chat(OPENAI_MODEL),
    path: '/v1/chat/completions',
  });
});

test('OpenAI Responses, the default of openai(model): generateText and streamText', async (t) => {
  const stack = await startStack(t);
  await bothLoops(stack, {
    format: 'responses',
    served: OPENAI_SERVED,
    model: openaiProvider(stack)(OPENAI_MODEL),
    path: '/v1/responses',
  });
});

test('Anthropic Messages: generateText and streamText, tool results metered', async (t) => {
  const stack = await startStack(t);
  await bothLoops(stack, {
    format: 'anthropic',
    served: ANTHROPIC_SERVED,
    model: anthropicProvider(stack)(ANTHROPIC_MODEL),
    path: '/v1/messages',
  });
  for (const request of stack.sdkRequests) {
    assert.equal(request.headers.get('x-api-key'), stack.anthropicKey);
  }
});
