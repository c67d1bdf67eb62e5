#include "app/state.hpp"

#include "core/log.hpp"
#include "core/state_file.hpp"

#include <caf/all.hpp>

namespace btcstream {

std::vector<update> load_state(const config& cfg, const std::string& instrument,
                               int64_t now_ms) {
  if (cfg.state_file.empty())
    return {};
  std::string text;
  bool missing = false;
  if (auto err = read_file(cfg.state_file, text, missing); !err.empty()) {
    if (missing)
      log(log_level::info, "--state-file '" + cfg.state_file
                               + "' does not exist yet: starting empty");
    else
      log(log_level::warn, "--state-file ignored: " + err);
    return {};
  }
  auto r = decode_state(text, instrument, now_ms, cfg.history_ttl,
                        cfg.history_max);
  if (!r.error.empty()) {
    log(log_level::warn,
        "--state-file '" + cfg.state_file + "' ignored: " + r.error);
    return {};
  }
  log(log_level::info, "--state-file '" + cfg.state_file + "': restored "
                           + std::to_string(r.updates.size()) + " updates ("
                           + std::to_string(r.expired) + " expired)");
  return std::move(r.updates);
}

void save_state(caf::actor_system& sys, const fetcher_actor& fetcher,
                const buffer_actor& buffer, const config& cfg,
                const std::string& instrument,
                std::chrono::milliseconds timeout) {
  if (cfg.state_file.empty())
    return;
  auto half = timeout / 2;
  std::optional<std::vector<update>> got;
  {
    caf::scoped_actor self{sys};
    // No update after the snapshot: once the fetcher has answered a ping
    // after `follow`, whatever it published is in the buffer's mailbox
    // ahead of our request.
    self->send(fetcher, atom::follow_v);
    self->request(fetcher, half, atom::ping_v)
        .receive([](uint64_t) {}, [](caf::error&) {});
    self->request(buffer, timeout - half, atom::updates_v,
                  std::optional<int64_t>{})
        .receive(
            [&](std::vector<update>& us) {
              got = std::move(us);
            },
            [&](caf::error& err) {
              log(log_level::error, "--state-file not written: the buffer "
                                    "did not answer: "
                                        + sys.render(err));
            });
  }
  if (!got)
    return;
  auto err
      = write_file_atomically(cfg.state_file, encode_state(instrument, *got));
  if (!err.empty())
    log(log_level::error, "--state-file not written: " + err);
  else
    log(log_level::info, "--state-file '" + cfg.state_file + "': saved "
                             + std::to_string(got->size()) + " updates");
}

} // namespace btcstream
