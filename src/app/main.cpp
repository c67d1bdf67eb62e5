#include "app/config.hpp"
#include "app/probe.hpp"
#include "app/wiring.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  auto parsed = btcstream::parse_config(argc, argv);
  if (!parsed.cfg) {
    std::fputs(parsed.output.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    return parsed.exit_code;
  }
  if (parsed.cfg->healthcheck)
    return btcstream::run_healthcheck(*parsed.cfg);
  return btcstream::run_service(*parsed.cfg);
}
