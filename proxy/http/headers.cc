#include "proxy/http/headers.h"

#include "proxy/http/http1.h"

namespace tokentap {

const std::string* find_header(const HeaderList& headers, std::string_view lower_name) {
  for (const Header& h : headers) {
    if (iequals(h.name, lower_name)) return &h.value;
  }
  return nullptr;
}

}  // namespace tokentap
