#include "parsers/tool_results.h"

#include <algorithm>

#include "parsers/json_util.h"

namespace tokentap {

namespace {

using Json = json_util::JsonNode;

std::string ref_text(std::string_view text) {
  return text.empty() ? std::string() : json_util::clean_label(text, kMaxToolRefBytes);
}

// A result's content as OpenAI carries it: an error when it is a JSON object with `error`.
bool openai_error_content(const Json* content) {
  if (content == nullptr || !content->is_string()) return false;
  std::string_view text = json_util::as_string(*content);
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos || text[start] != '{') return false;
  json_util::JsonDoc doc;
  const Json* parsed = doc.parse(text);
  return parsed != nullptr && parsed->is_object() && parsed->contains("error");
}

void add(std::vector<ToolResultRef>& out, ToolResultRef ref) {
  if (out.size() < kMaxToolResultRefs) out.push_back(std::move(ref));
}

// Walks `items` backwards while `belongs` holds, then reports those items in order.
template <typename Belongs, typename Read>
void trailing(const Json& items, Belongs belongs, Read read, std::vector<ToolResultRef>& out) {
  std::vector<const Json*> all;
  all.reserve(items.size());
  for (const Json& item : items) all.push_back(&item);
  size_t first = all.size();
  while (first > 0 && all[first - 1]->is_object() && belongs(*all[first - 1])) --first;
  for (size_t i = first; i < all.size(); ++i) read(*all[i], out);
}

void openai_chat(const Json& body, std::vector<ToolResultRef>& out) {
  const Json* messages = json_util::array_member(body, "messages");
  if (messages == nullptr) return;
  trailing(
      *messages, [](const Json& m) { return json_util::string_member(m, "role") == "tool"; },
      [](const Json& m, std::vector<ToolResultRef>& refs) {
        add(refs, {.call_id = ref_text(json_util::string_member(m, "tool_call_id")),
                   .name = {},
                   .is_error = openai_error_content(json_util::member(m, "content"))});
      },
      out);
}

void openai_responses(const Json& body, std::vector<ToolResultRef>& out) {
  const Json* input = json_util::array_member(body, "input");
  if (input == nullptr) return;
  auto is_output = [](const Json& item) {
    std::string_view type = json_util::string_member(item, "type");
    return type == "function_call_output" || type == "custom_tool_call_output";
  };
  trailing(
      *input, is_output,
      [](const Json& item, std::vector<ToolResultRef>& refs) {
        add(refs, {.call_id = ref_text(json_util::string_member(item, "call_id")),
                   .name = {},
                   .is_error = openai_error_content(json_util::member(item, "output"))});
      },
      out);
}

void anthropic(const Json& body, std::vector<ToolResultRef>& out) {
  const Json* messages = json_util::array_member(body, "messages");
  if (messages == nullptr || messages->empty()) return;
  const Json& last = messages->back();
  if (json_util::string_member(last, "role") != "user") return;
  const Json* content = json_util::array_member(last, "content");
  if (content == nullptr) return;
  for (const Json& block : *content) {
    if (json_util::string_member(block, "type") != "tool_result") continue;
    add(out, {.call_id = ref_text(json_util::string_member(block, "tool_use_id")),
              .name = {},
              .is_error = json_util::true_member(block, "is_error")});
  }
}

void gemini(const Json& body, std::vector<ToolResultRef>& out) {
  const Json* contents = json_util::array_member(body, "contents");
  if (contents == nullptr || contents->empty()) return;
  const Json& last = contents->back();
  if (json_util::string_member(last, "role") == "model") return;
  const Json* parts = json_util::array_member(last, "parts");
  if (parts == nullptr) return;
  for (const Json& part : *parts) {
    const Json* response = json_util::object_member(part, "functionResponse");
    if (response == nullptr) continue;
    const Json* payload = json_util::object_member(*response, "response");
    add(out, {.call_id = ref_text(json_util::string_member(*response, "id")),
              .name = ref_text(json_util::string_member(*response, "name")),
              .is_error = payload != nullptr && payload->contains("error")});
  }
}

}  // namespace

bool marks_tool_result(ApiProvider provider, std::string_view raw, bool is_key) {
  switch (provider) {
    case ApiProvider::openai:
    case ApiProvider::azure_openai:
    case ApiProvider::openai_compatible:
      return is_key ? raw == "tool_call_id" : raw.ends_with("_call_output");
    case ApiProvider::gemini:
      return is_key && raw == "functionResponse";
    case ApiProvider::anthropic:
      break;
  }
  return false;
}

std::vector<ToolResultRef> newest_tool_results(ApiProvider provider, Operation operation,
                                               std::string_view body) {
  std::vector<ToolResultRef> out;
  try {
    json_util::JsonDoc doc;
    const Json* root = doc.parse(body);
    if (root == nullptr || !root->is_object()) return out;
    const Json& parsed = *root;
    switch (provider) {
      case ApiProvider::openai:
      case ApiProvider::azure_openai:
      case ApiProvider::openai_compatible:
        if (operation == Operation::chat_completions) openai_chat(parsed, out);
        if (operation == Operation::responses) openai_responses(parsed, out);
        break;
      case ApiProvider::anthropic:
        if (operation == Operation::messages) anthropic(parsed, out);
        break;
      case ApiProvider::gemini:
        if (operation == Operation::generate_content) gemini(parsed, out);
        break;
    }
  } catch (...) {  // allocation failure: no results rather than an exception
    out.clear();
  }
  return out;
}

}  // namespace tokentap
