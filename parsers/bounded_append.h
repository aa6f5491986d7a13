// Internal to parsers/: appending to a buffer that is never allowed past a limit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace tokentap {

// Appends `bytes` to `buffer`, whose content the caller keeps within `limit`. Capacity grows
// geometrically as usual, except that the step that would pass `limit` allocates exactly
// `limit`: a buffer that fills up to its limit holds `limit` bytes, not up to twice that.
inline void bounded_append(std::string& buffer, std::string_view bytes, size_t limit) {
  const size_t needed = buffer.size() + bytes.size();
  if (needed > buffer.capacity() && buffer.capacity() > limit / 2) {
    std::string bigger;
    bigger.reserve(std::max(limit, needed));
    bigger.append(buffer);
    buffer.swap(bigger);
  }
  buffer.append(bytes);
}

}  // namespace tokentap
