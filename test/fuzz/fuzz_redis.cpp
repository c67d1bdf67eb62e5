// (e) Redis replies: raw bytes through hiredis's redisReader (as
// redis_connection::on_read feeds it), each reply converted into our
// redis_value, then through every decoder of log_codec. The reader and the
// conversion are redis_connection's own (cluster/redis_reply.hpp).
//
// Invariants: decoded entries have an id > 0, a finite price > 0 and
// prev < id; a read's last_id is >= every entry id; entries + malformed
// count every element; a lease token is >= 0; an append is fenced or has
// an id > 0; a failure carries its text. The bytes fed whole and fed in
// pieces give the same replies, and encode_command's output reads back as
// the same strings.

#include "fuzz_common.hpp"

#include "cluster/redis_reply.hpp"
#include "core/log_codec.hpp"
#include "core/redis_value.hpp"

#include <hiredis/hiredis.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using namespace btcstream;
using type = redis_value::type;

// Every reply in `bytes`, fed in pieces of `chunk`; stops at a parse error
// (the connection would fail and close) and says so.
std::vector<redis_value> replies(std::string_view bytes, size_t chunk,
                                 bool& failed) {
  std::vector<redis_value> out;
  failed = false;
  auto* reader = make_bounded_reader(); // as redis_connection reads
  FUZZ_CHECK(reader != nullptr);
  while (!failed) {
    auto n = std::min(chunk, bytes.size());
    if (n > 0 && redisReaderFeed(reader, bytes.data(), n) != REDIS_OK) {
      failed = true;
      break;
    }
    bytes.remove_prefix(n);
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        failed = true;
        break;
      }
      if (!raw)
        break;
      out.push_back(to_redis_value(static_cast<redisReply*>(raw)));
      freeReplyObject(raw);
    }
    if (bytes.empty())
      break;
  }
  redisReaderFree(reader);
  return out;
}

// `v` is the whole reply, `entries` the array of entries in it (or nil).
void check_read(const read_reply& r, const redis_value& v,
                const redis_value& entries) {
  if (r.failure != log_failure::none) {
    // Redis's own text for a server error (which may be empty: "-\r\n"),
    // in place of the reply or of its entries; ours otherwise.
    if (r.failure == log_failure::server)
      FUZZ_CHECK((v.kind == type::error && r.error == v.str)
                 || (entries.kind == type::error && r.error == entries.str));
    else
      FUZZ_CHECK(r.failure == log_failure::protocol && !r.error.empty());
    FUZZ_CHECK(r.entries.empty() && r.malformed == 0 && r.last_id == 0);
    return;
  }
  FUZZ_CHECK(r.error.empty());
  if (entries.kind == type::array)
    FUZZ_CHECK(r.entries.size() + r.malformed == entries.elements.size());
  for (auto& e : r.entries) {
    FUZZ_CHECK(e.u.id > 0);
    FUZZ_CHECK(std::isfinite(e.u.price) && e.u.price > 0);
    FUZZ_CHECK(e.prev < e.u.id);
    FUZZ_CHECK(r.last_id >= e.u.id);
  }
}

void check(const redis_value& v) {
  check_read(decode_range(v), v, v);
  // An XREAD reply holds the entries at [0][1].
  redis_value none;
  const auto* entries = &none;
  if (v.kind == type::array && v.elements.size() == 1
      && v.elements[0].kind == type::array
      && v.elements[0].elements.size() == 2)
    entries = &v.elements[0].elements[1];
  check_read(decode_xread(v), v, *entries);

  auto lease = decode_lease(v);
  if (lease.failure == log_failure::none)
    FUZZ_CHECK(lease.error.empty() && v.kind == type::array);
  else
    FUZZ_CHECK(!lease.error.empty() || v.kind == type::error);

  auto append = decode_append(v);
  if (append.failure == log_failure::none)
    FUZZ_CHECK(append.fenced != (append.id > 0));
  else
    FUZZ_CHECK(!append.fenced && append.id == 0);
  auto release = decode_release(v);
  if (release.failure != log_failure::none)
    FUZZ_CHECK(
        !release.released
        && (release.failure == log_failure::server || !release.error.empty()));
  if (release.released)
    FUZZ_CHECK(v.kind == type::integer && v.integer == 1);
  if (append.failure == log_failure::server
      || lease.failure == log_failure::server
      || release.failure == log_failure::server)
    FUZZ_CHECK(v.kind == type::error);

  if (v.kind == type::array)
    for (auto& item : v.elements)
      if (auto e = decode_entry(item)) {
        FUZZ_CHECK(e->u.id > 0 && e->prev < e->u.id);
        FUZZ_CHECK(std::isfinite(e->u.price) && e->u.price > 0);
      }
}

// The strings of a reply, flattened: arguments for encode_command.
void strings_of(const redis_value& v, std::vector<std::string>& out) {
  if (v.kind == type::string || v.kind == type::error)
    out.push_back(v.str);
  for (auto& e : v.elements)
    strings_of(e, out);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  bool failed_whole = false;
  bool failed_pieces = false;
  auto whole = replies(bytes, bytes.size() + 1, failed_whole);
  auto pieces = replies(bytes, 1 + size % 13, failed_pieces);
  FUZZ_CHECK(failed_whole == failed_pieces);
  FUZZ_CHECK(whole == pieces);
  std::vector<std::string> args;
  for (auto& v : whole) {
    check(v);
    strings_of(v, args);
  }
  // A command we send reads back as the same bulk strings.
  if (!args.empty()) {
    bool failed = false;
    auto back = replies(encode_command(args), SIZE_MAX, failed);
    FUZZ_CHECK(!failed && back.size() == 1);
    FUZZ_CHECK(back[0].kind == type::array
               && back[0].elements.size() == args.size());
    for (size_t i = 0; i < args.size(); ++i)
      FUZZ_CHECK(back[0].elements[i].is_string(args[i]));
  }
  return 0;
}
