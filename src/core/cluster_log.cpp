#include "core/cluster_log.hpp"

namespace btcstream {

const char* to_string(log_failure f) {
  switch (f) {
  case log_failure::none:
    return "none";
  case log_failure::connect:
    return "connect";
  case log_failure::timeout:
    return "timeout";
  case log_failure::protocol:
    return "protocol";
  case log_failure::server:
    return "server";
  }
  return "unknown";
}

} // namespace btcstream
