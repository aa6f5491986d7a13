#include "proxy/core/request_context.h"

#include <charconv>
#include <cmath>
#include <ctime>
#include <iterator>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "pricing/cost.h"
#include "proxy/http/http1.h"

namespace tokentap {}  // namespace tokentap
