#include "cluster/redis_log.hpp"

#include "core/log_codec.hpp"
#include "core/sse.hpp"

namespace btcstream {

namespace {

// Lua numbers are doubles: tokens and ids (~1.8e12) are exact below 2^53,
// and every integer is written with '%d', never tostring (which switches
// to exponent notation past 14 digits).
const char* const lease_lua = R"lua(
local want = ARGV[2] .. ' ' .. ARGV[1]
local cur = redis.call('GET', KEYS[1])
if cur == want then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {tonumber(ARGV[2]), ARGV[1]}
end
if not cur then
  local t = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], string.format('%d', t) .. ' ' .. ARGV[1],
             'PX', ARGV[3])
  return {t, ARGV[1]}
end
local t, n = string.match(cur, '^(%d+) (.*)$')
if not t then
  return redis.error_reply('ERR the lease key holds a foreign value')
end
if n == ARGV[1] and ARGV[2] == '0' then
  -- Ours, though the node does not know its token: the reply to its grant
  -- was lost (or it is this node's previous run). It will lead from this
  -- reply on, so the lease runs from now too, not from the lost grant.
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {tonumber(t), n}
)lua";

const char* const append_lua = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.status_reply('FENCED')
end
local ts = tonumber(ARGV[2])
local top = 0
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then
  top = tonumber(string.match(last[1][1], '^(%d+)-'))
end
local id = ts
if top + 1 > id then id = top + 1 end
local floor = tonumber(ARGV[4])
if floor > id then id = floor end
if id >= 9007199254740992 then
  return redis.error_reply('ERR id past 2^53')
end
local now = redis.call('TIME')
local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5],
           string.format('%d', id) .. '-0', 'ts', ARGV[2], 'price', ARGV[3],
           'prev', string.format('%d', top), 'at', string.format('%d', at))
local min = ts - tonumber(ARGV[6])
if min > 0 then
  redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d', min))
end
return id
)lua";

const char* const release_lua = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
)lua";

template<class Reply>
Reply no_answer(const redis_result& r) {
  Reply out;
  out.failure = r.failure;
  out.error = r.error;
  return out;
}

} // namespace

const std::string& redis_log::lease_script() {
  static const std::string s = lease_lua;
  return s;
}

const std::string& redis_log::append_script() {
  static const std::string s = append_lua;
  return s;
}

const std::string& redis_log::release_script() {
  static const std::string s = release_lua;
  return s;
}

redis_log::redis_log(std::shared_ptr<redis_connection> conn, std::string prefix,
                     std::chrono::milliseconds timeout,
                     std::chrono::milliseconds block_margin)
    : conn_(std::move(conn)),
      log_key_(prefix + ":log"),
      lease_key_(prefix + ":lease"),
      token_key_(prefix + ":token"),
      timeout_(timeout),
      block_margin_(block_margin) {}

redis_log::~redis_log() {
  // The connection's pending reads keep it alive; without this it would
  // hold its socket until the io_context stops.
  conn_->stop();
}

void redis_log::run_script(const std::string& script,
                           std::vector<std::string> keys_and_args,
                           redis_connection::callback done) {
  // Always EVAL, never EVALSHA: Redis forgets its script cache on every
  // restart (and on SCRIPT FLUSH), and a NOSCRIPT fallback would re-send
  // the calls it refused behind those already pipelined after them,
  // reordering appends. The scripts are under 1 KB and run a few times a
  // second at most; Redis caches them by hash either way.
  std::vector<std::string> args{"EVAL", script};
  args.insert(args.end(), keys_and_args.begin(), keys_and_args.end());
  conn_->command(std::move(args), timeout_, std::move(done));
}

void redis_log::lease(const std::string& node, uint64_t token,
                      std::chrono::milliseconds ttl,
                      std::function<void(lease_reply)> done) {
  run_script(lease_script(),
             {"2", lease_key_, token_key_, node, std::to_string(token),
              std::to_string(ttl.count())},
             [done = std::move(done)](redis_result r) {
               if (r.failure != log_failure::none)
                 return done(no_answer<lease_reply>(r));
               done(decode_lease(r.value));
             });
}

void redis_log::append(const std::string& node, uint64_t token, const update& u,
                       uint64_t floor, uint64_t max_len,
                       std::chrono::milliseconds ttl,
                       std::function<void(append_reply)> done) {
  run_script(append_script(),
             {"2", lease_key_, log_key_, std::to_string(token) + ' ' + node,
              std::to_string(u.ts_ms), format_price(u.price),
              std::to_string(floor), std::to_string(max_len),
              std::to_string(ttl.count())},
             [done = std::move(done)](redis_result r) {
               if (r.failure != log_failure::none)
                 return done(no_answer<append_reply>(r));
               done(decode_append(r.value));
             });
}

void redis_log::release(const std::string& node, uint64_t token,
                        std::function<void(release_reply)> done) {
  run_script(release_script(),
             {"1", lease_key_, std::to_string(token) + ' ' + node},
             [done = std::move(done)](redis_result r) {
               if (r.failure != log_failure::none)
                 return done(no_answer<release_reply>(r));
               done(decode_release(r.value));
             });
}

void redis_log::read(uint64_t after, size_t count,
                     std::optional<std::chrono::milliseconds> block,
                     std::function<void(read_reply)> done) {
  std::vector<std::string> args{"XREAD", "COUNT", std::to_string(count)};
  auto timeout = timeout_;
  if (block && block->count() > 0) {
    args.push_back("BLOCK");
    args.push_back(std::to_string(block->count()));
    // Redis answers a blocking read after `block` at the latest; silence
    // past the margin means a stopped server or a half-open connection.
    timeout = *block + block_margin_;
  }
  args.push_back("STREAMS");
  args.push_back(log_key_);
  // After every sequence number at `after`: entries written by hand with
  // another sequence number there are read once, never again.
  args.push_back(std::to_string(after) + "-18446744073709551615");
  conn_->command(std::move(args), timeout,
                 [done = std::move(done)](redis_result r) {
                   if (r.failure != log_failure::none)
                     return done(no_answer<read_reply>(r));
                   done(decode_xread(r.value));
                 });
}

void redis_log::stop() {
  conn_->stop();
}

} // namespace btcstream
