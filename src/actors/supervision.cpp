#include "actors/supervision.hpp"

#include <caf/all.hpp>

namespace btcstream {

void watch_core_actor(
    const caf::actor& core, std::string name, std::function<bool()> expected,
    std::function<void(const std::string&, const std::string&)> on_death) {
  core->attach_functor([name = std::move(name), expected = std::move(expected),
                        on_death = std::move(on_death)](const caf::error& r) {
    if (!expected())
      on_death(name, to_string(r));
  });
}

} // namespace btcstream
