// One pass over the string literals of a JSON text without parsing it: every string is handed
// over with its raw text (escapes as written, quotes excluded) and whether it is an object key
// (followed by ':'). Structure, numbers and literals are skipped. The request side of metering
// runs its whole-body questions in this one pass (prompt text for estimates, which tool-result
// markers a body holds) instead of one scan each. libc's vectorised memchr finds the quotes:
// this pass sees every byte of every request body. A malformed text ends the pass where it is
// damaged (inside a string that is never closed). Header-only so that the visitor inlines.
#pragma once

#include <cstddef>
#include <string_view>

namespace tokentap::json_util {

template <class Visit>  // Visit: void(std::string_view raw_text, bool is_key)
void for_each_string(std::string_view text, Visit&& visit) {
  size_t i = 0;
  while ((i = text.find('"', i)) != std::string_view::npos) {
    const size_t start = ++i;
    for (;; ++i) {
      i = text.find('"', i);
      if (i == std::string_view::npos) return;  // cut inside a string: stop at the damage
      size_t backslashes = 0;
      while (i - backslashes > start && text[i - backslashes - 1] == '\\') ++backslashes;
      if (backslashes % 2 == 0) break;  // not escaped: the string ends here
    }
    const std::string_view raw = text.substr(start, i - start);
    ++i;
    size_t next = i;
    while (next < text.size() &&
           (text[next] == ' ' || text[next] == '\t' || text[next] == '\n' || text[next] == '\r')) {
      ++next;
    }
    visit(raw, next < text.size() && text[next] == ':');
  }
}

}  // namespace tokentap::json_util
