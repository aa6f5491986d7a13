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
  MODELS,
  PROMPT,
  ROUNDS,
  TOOL_DESCRIPTIONS,
  runPlainAndStreamedLoops,
} from './tool_loop.mjs';

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
  const result = await generateText({
    model,
    tools: aiTools(tools),
    stopWhen: stepCountIs(STEPS + 2),
    prompt: PROMPT,
    maxRetries: 0,
  });
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
  for await (const delta of result.textStream) deltas.push(delta);
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

// generateText, then streamText, with `model` against the scripted model in `format`.
function aiLoops(stack, { format, path, model }) {
  return runPlainAndStreamedLoops(stack, {
    format,
    path,
    plain: (tools) => generateLoop(model, tools),
    streamed: (tools) => streamLoop(model, tools),
  });
}

test('OpenAI chat completions: generateText and streamText tool loops', async (t) => {
  const stack = await startStack(t);
  await aiLoops(stack, {
    format: 'chat',
    path: '/v1/chat/completions',
    model: openaiProvider(stack).chat(MODELS.openai.requested),
  });
});

test('OpenAI Responses, the default of openai(model): generateText and streamText', async (t) => {
  const stack = await startStack(t);
  await aiLoops(stack, {
    format: 'responses',
    path: '/v1/responses',
    model: openaiProvider(stack)(MODELS.openai.requested),
  });
});

test('Anthropic Messages: generateText and streamText, tool results metered', async (t) => {
  const stack = await startStack(t);
  await aiLoops(stack, {
    format: 'anthropic',
    path: '/v1/messages',
    model: anthropicProvider(stack)(MODELS.anthropic.requested),
  });
  for (const request of stack.sdkRequests) {
    assert.equal(request.headers.get('x-api-key'), stack.anthropicKey);
  }
});
