// Counts the bytes this test binary holds through operator new, so a test can assert that
// memory stays bounded while it pushes a large input through a parser.
#pragma once

#include <cstddef>

namespace tokentap::test {

size_t live_heap_bytes();
// The highest live_heap_bytes() since the last reset_peak_heap_bytes().
size_t peak_heap_bytes();
void reset_peak_heap_bytes();

}  // namespace tokentap::test
