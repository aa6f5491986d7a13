// Provider wire formats as the real APIs send them, built from what a test means to say
// (model, text, tool calls, token counts). Each builder returns plain objects: the fake provider
// serialises them, and the test compares what the SDK returns against the same objects.
import { randomBytes } from 'node:crypto';

const hex = (bytes) => randomBytes(bytes).toString('hex');

export const ids = {
  openaiRequest: () => `req_${hex(16)}`,
  anthropicRequest: () => `req_011C${hex(12)}`,
  chatCompletion: () => `chatcmpl-${hex(15)}`,
  toolCall: () => `call_${hex(12)}`,
  message: () => `msg_01${hex(12)}`,
  toolUse: () => `toolu_01${hex(12)}`,
  response: () => `resp_${hex(24)}`,
  responseItem: (prefix) => `${prefix}_${hex(24)}`,
};

// Cuts `text` into `count` pieces of nearly equal length (at least one piece), as a model's
// tokens arrive in a stream.
export function pieces(text, count) {
  const size = Math.max(1, Math.ceil(text.length / count));
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length ? out : [''];
}

export const openai = {
  usage(prompt, completion, { cached = 0, reasoning = 0 } = {}) {
    return {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: reasoning,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
  },

  // A chat.completion object. `toolCalls`: [{ name, arguments (a JSON string) }].
  completion({ model, content = null, toolCalls = null, usage, id = ids.chatCompletion() }) {
    const message = { role: 'assistant', content, refusal: null, annotations: [] };
    if (toolCalls) {
      message.tool_calls = toolCalls.map((call) => ({
        id: call.id ?? ids.toolCall(),
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    return {
      id,
      object: 'chat.completion',
      created: 1763790000,
      model,
      choices: [
        { index: 0, message, logprobs: null, finish_reason: toolCalls ? 'tool_calls' : 'stop' },
      ],
      usage,
      service_tier: 'default',
      system_fingerprint: 'fp_560af6e559',
    };
  },

  // The chat.completion.chunk objects of one streamed answer, in order. With `usage` (what a
  // request with stream_options.include_usage gets) every chunk carries "usage": null and a final
  // chunk with no choices carries the usage. `toolCalls`: [{ id, name, arguments }], whose
  // arguments arrive in `argumentPieces` fragments.
  chunks({
    model,
    text = null,
    textPieces = 3,
    toolCalls = null,
    argumentPieces = 3,
    usage = null,
    id = ids.chatCompletion(),
  }) {
    const base = {
      id,
      object: 'chat.completion.chunk',
      created: 1763790000,
      model,
      service_tier: 'default',
      system_fingerprint: 'fp_560af6e559',
    };
    const chunk = (delta, finishReason = null) => {
      const c = {
        ...base,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      };
      if (usage) c.usage = null;
      return c;
    };
    const out = [chunk({ role: 'assistant', content: toolCalls ? null : '', refusal: null })];
    if (text !== null) {
      for (const piece of pieces(text, textPieces)) out.push(chunk({ content: piece }));
    }
    (toolCalls ?? []).forEach((call, index) => {
      out.push(
        chunk({
          tool_calls: [
            { index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
          ],
        }),
      );
      for (const piece of pieces(call.arguments, argumentPieces)) {
        out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
      }
    });
    out.push(chunk({}, toolCalls ? 'tool_calls' : 'stop'));
    if (usage) out.push({ ...base, choices: [], usage });
    return out;
  },

  // SSE events for `chunks`, ending with the [DONE] sentinel.
  sse(chunks) {
    return [...chunks.map((data) => ({ data })), { data: '[DONE]' }];
  },

  // The SSE events the real API streams for a request body: only a request with
  // stream_options.include_usage: true gets the usage chunk (and "usage": null in every other
  // chunk). `options` are those of chunks(); pass a fixed `id` to compare two streams.
  streamFor(requestBody, { usage, ...options }) {
    const wantsUsage = requestBody.stream_options?.include_usage === true;
    return openai.sse(openai.chunks({ ...options, usage: wantsUsage ? usage : null }));
  },

  rateLimitError(message) {
    return {
      error: { message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' },
    };
  },

  contextLengthError(limit, requested) {
    return {
      error: {
        message:
          `This model's maximum context length is ${limit} tokens. However, your messages ` +
          `resulted in ${requested} tokens. Please reduce the length of the messages.`,
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    };
  },

  invalidApiKeyError(key) {
    return {
      error: {
        message:
          `Incorrect API key provided: ${key}. You can find your API key at ` +
          'https://platform.openai.com/account/api-keys.',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    };
  },

  headers(requestId) {
    return {
      'x-request-id': requestId,
      'openai-organization': 'org-e2e',
      'openai-processing-ms': '212',
      'openai-version': '2020-10-01',
      'x-ratelimit-limit-requests': '10000',
      'x-ratelimit-remaining-requests': '9999',
    };
  },
};

// The OpenAI Responses API (POST /v1/responses).
export const responses = {
  usage(input, output, { cached = 0, reasoning = 0 } = {}) {
    return {
      input_tokens: input,
      input_tokens_details: { cached_tokens: cached },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: input + output,
    };
  },

  // The completed output items of an answer: a function_call item per tool call
  // ({ callId, name, arguments (a JSON string) }), then a message item when there is text.
  output({ text = null, toolCalls = [] }) {
    const items = toolCalls.map((call) => ({
      id: ids.responseItem('fc'),
      type: 'function_call',
      status: 'completed',
      arguments: call.arguments,
      call_id: call.callId,
      name: call.name,
    }));
    if (text !== null) {
      items.push({
        id: ids.responseItem('msg'),
        type: 'message',
        status: 'completed',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text }],
        role: 'assistant',
      });
    }
    return items;
  },

  // A response object; `output` from output(), `status` 'completed' unless given.
  response({ model, output, usage, id = ids.response(), status = 'completed' }) {
    return {
      id,
      object: 'response',
      created_at: 1763790000,
      status,
      background: false,
      error: null,
      incomplete_details: null,
      instructions: null,
      max_output_tokens: null,
      model,
      output,
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      service_tier: 'default',
      store: true,
      temperature: 1.0,
      text: { format: { type: 'text' }, verbosity: 'medium' },
      tool_choice: 'auto',
      tools: [],
      top_p: 1.0,
      truncation: 'disabled',
      usage,
      user: null,
      metadata: {},
    };
  },

  // The events that stream `response` as the real API sends them: response.created and
  // response.in_progress (no output, no usage), per output item output_item.added, its argument
  // or text deltas, the matching .done events and output_item.done, then response.completed with
  // the whole response. Each element is { event, data }, numbered by sequence_number.
  streamEvents(response, { textPieces = 3, argumentPieces = 3 } = {}) {
    const events = [];
    const push = (data) =>
      events.push({ event: data.type, data: { ...data, sequence_number: events.length } });
    const pending = { ...response, status: 'in_progress', output: [], usage: null };
    push({ type: 'response.created', response: pending });
    push({ type: 'response.in_progress', response: pending });
    response.output.forEach((item, outputIndex) => {
      if (item.type === 'function_call') {
        push({
          type: 'response.output_item.added',
          output_index: outputIndex,
          item: { ...item, status: 'in_progress', arguments: '' },
        });
        for (const delta of pieces(item.arguments, argumentPieces)) {
          push({
            type: 'response.function_call_arguments.delta',
            item_id: item.id,
            output_index: outputIndex,
            delta,
          });
        }
        push({
          type: 'response.function_call_arguments.done',
          item_id: item.id,
          output_index: outputIndex,
          arguments: item.arguments,
        });
      } else if (item.type === 'message') {
        push({
          type: 'response.output_item.added',
          output_index: outputIndex,
          item: { ...item, status: 'in_progress', content: [] },
        });
        item.content.forEach((part, contentIndex) => {
          const at = { item_id: item.id, output_index: outputIndex, content_index: contentIndex };
          push({ type: 'response.content_part.added', ...at, part: { ...part, text: '' } });
          for (const delta of pieces(part.text, textPieces)) {
            push({ type: 'response.output_text.delta', ...at, delta, logprobs: [] });
          }
          push({ type: 'response.output_text.done', ...at, text: part.text, logprobs: [] });
          push({ type: 'response.content_part.done', ...at, part });
        });
      } else {
        throw new Error(`responses.streamEvents: unsupported item type ${item.type}`);
      }
      push({ type: 'response.output_item.done', output_index: outputIndex, item });
    });
    push({ type: 'response.completed', response });
    return events;
  },
};

export const anthropic = {
  usage(input, output, { cacheCreation = 0, cacheRead = 0 } = {}) {
    return {
      input_tokens: input,
      cache_creation_input_tokens: cacheCreation,
      cache_read_input_tokens: cacheRead,
      cache_creation: { ephemeral_5m_input_tokens: cacheCreation, ephemeral_1h_input_tokens: 0 },
      output_tokens: output,
      service_tier: 'standard',
    };
  },

  // A Messages API response. `content`: [{ type: 'text', text }] and/or
  // [{ type: 'tool_use', id, name, input }].
  message({ model, content, usage, stopReason, id = ids.message() }) {
    const usesTool = content.some((block) => block.type === 'tool_use');
    return {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: stopReason ?? (usesTool ? 'tool_use' : 'end_turn'),
      stop_sequence: null,
      usage,
    };
  },

  // The real event sequence that streams `message`: message_start (empty content, output_tokens
  // not final), a ping, per block content_block_start / _delta... / _stop, message_delta with the
  // stop reason and final usage, message_stop. Each element is { event, data }.
  streamEvents(message, { textPieces = 3, jsonPieces = 3 } = {}) {
    const events = [];
    const push = (data) => events.push({ event: data.type, data });
    push({
      type: 'message_start',
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...message.usage, output_tokens: 1 },
      },
    });
    message.content.forEach((block, index) => {
      if (block.type === 'text') {
        push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        if (index === 0) push({ type: 'ping' });
        for (const text of pieces(block.text, textPieces)) {
          push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
        }
      } else if (block.type === 'tool_use') {
        push({
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} },
        });
        for (const partial of pieces(JSON.stringify(block.input), jsonPieces)) {
          push({
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: partial },
          });
        }
      } else {
        throw new Error(`streamEvents: unsupported block type ${block.type}`);
      }
      push({ type: 'content_block_stop', index });
    });
    push({
      type: 'message_delta',
      delta: { stop_reason: message.stop_reason, stop_sequence: message.stop_sequence },
      usage: { output_tokens: message.usage.output_tokens },
    });
    push({ type: 'message_stop' });
    return events;
  },

  overloadedError(requestId) {
    return {
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
      request_id: requestId,
    };
  },

  headers(requestId) {
    return {
      'request-id': requestId,
      'anthropic-organization-id': '5a0c4a0e-e2e0-4e2e-8e2e-e2e0e2e0e2e0',
      'anthropic-ratelimit-requests-limit': '4000',
      'anthropic-ratelimit-requests-remaining': '3999',
    };
  },
};

export const gemini = {
  // usageMetadata: promptTokenCount includes the cached tokens; candidatesTokenCount excludes
  // the thoughts.
  usage(prompt, candidates, { cached = 0, thoughts = 0 } = {}) {
    const usage = {
      promptTokenCount: prompt,
      candidatesTokenCount: candidates,
      totalTokenCount: prompt + candidates + thoughts,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }],
    };
    if (cached) {
      usage.cachedContentTokenCount = cached;
      usage.cacheTokensDetails = [{ modality: 'TEXT', tokenCount: cached }];
    }
    if (thoughts) usage.thoughtsTokenCount = thoughts;
    return usage;
  },

  // A GenerateContentResponse with one text candidate.
  response({ modelVersion, text, usage, finishReason = 'STOP', responseId = hex(11) }) {
    return {
      candidates: [{ content: { parts: [{ text }], role: 'model' }, finishReason, index: 0 }],
      usageMetadata: usage,
      modelVersion,
      responseId,
    };
  },

  // The chunks of a streamGenerateContent answer: each carries a piece of the text and the
  // usage known so far (the prompt side); the last one the finish reason and the final usage.
  chunks({ modelVersion, text, textPieces = 3, usage, responseId = hex(11) }) {
    const parts = pieces(text, textPieces);
    return parts.map((piece, i) => {
      const last = i === parts.length - 1;
      const candidate = { content: { parts: [{ text: piece }], role: 'model' }, index: 0 };
      if (last) candidate.finishReason = 'STOP';
      return {
        candidates: [candidate],
        usageMetadata: last
          ? usage
          : { promptTokenCount: usage.promptTokenCount, totalTokenCount: usage.promptTokenCount },
        modelVersion,
        responseId,
      };
    });
  },
};
