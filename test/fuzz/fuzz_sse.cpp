// (c) SSE encoding round trip. Whatever id, timestamp and price an update
// carries, and whatever bytes a client sent as its resume point (echoed in
// `event: gap`), the frames we encode must parse back exactly with a
// spec-faithful EventSource parser (WHATWG HTML, "Parsing an event stream"):
// one event per frame, the same fields, no injected line, event or id.
//
// Input: id (8 bytes), ts (8), price (8, the bits of a double), retry (8),
// a byte whose low bit says whether `oldest` is given, oldest (8), then the
// `requested` text.

#include "fuzz_common.hpp"

#include "core/sse.hpp"

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using namespace btcstream;

struct event {
  std::string type;
  std::string data;
  std::string last_event_id;
};

// The event stream interpretation of WHATWG HTML 9.2.6, on bytes that are
// already UTF-8 (the decode step is checked separately: our frames must be
// valid UTF-8).
struct sse_parser {
  std::vector<event> events;
  std::string data, type, last_event_id_buffer, last_event_id;
  std::optional<int64_t> retry;
  /// Bytes after the last line end: an incomplete line.
  std::string pending;

  void line(std::string_view l) {
    if (l.empty()) {
      dispatch();
      return;
    }
    if (l.front() == ':')
      return; // a comment
    std::string_view field = l, value;
    if (auto colon = l.find(':'); colon != std::string_view::npos) {
      field = l.substr(0, colon);
      value = l.substr(colon + 1);
      if (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
    }
    if (field == "event") {
      type = std::string{value};
    } else if (field == "data") {
      data += value;
      data += '\n';
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos)
        last_event_id_buffer = std::string{value};
    } else if (field == "retry") {
      bool digits = !value.empty();
      for (auto c : value)
        digits = digits && c >= '0' && c <= '9';
      // (The spec takes any digits; ours fit an int64_t.)
      if (digits && value.size() <= 19)
        retry = std::stoll(std::string{value});
    }
  }

  void dispatch() {
    last_event_id = last_event_id_buffer;
    if (data.empty()) {
      type.clear();
      return;
    }
    data.pop_back();
    events.push_back({type.empty() ? "message" : type, data, last_event_id});
    data.clear();
    type.clear();
  }

  void feed(std::string_view bytes) {
    pending += bytes;
    size_t start = 0;
    for (size_t i = 0; i < pending.size(); ++i) {
      char c = pending[i];
      if (c != '\r' && c != '\n')
        continue;
      // A CR at the end of the buffer may be the first half of CRLF: a
      // frame must never end in a bare CR (it would be ambiguous).
      line(std::string_view{pending}.substr(start, i - start));
      if (c == '\r' && i + 1 < pending.size() && pending[i + 1] == '\n')
        ++i;
      start = i + 1;
    }
    pending.erase(0, start);
  }
};

void check_frame_bytes(std::string_view f) {
  FUZZ_CHECK(f.size() >= 2 && f.compare(f.size() - 2, 2, "\n\n") == 0);
  FUZZ_CHECK(f.find('\r') == std::string_view::npos);
  FUZZ_CHECK(f.find('\0') == std::string_view::npos);
  // Exactly one blank line: the one that ends the frame.
  FUZZ_CHECK(f.find("\n\n") == f.size() - 2);
  FUZZ_CHECK(fuzz::valid_utf8(f));
}

// A stored frame is its text as one HTTP/1.1 chunk: "<hex size>\r\n", the
// text, "\r\n".
void check_chunk(const frame& f) {
  auto c = f.chunk();
  auto head_end = c.find("\r\n");
  FUZZ_CHECK(head_end != std::string_view::npos);
  FUZZ_CHECK(std::stoull(std::string(c.substr(0, head_end)), nullptr, 16)
             == f.size());
  FUZZ_CHECK(c.substr(head_end + 2, f.size()) == f.text());
  FUZZ_CHECK(c.size() == head_end + 2 + f.size() + 2);
  FUZZ_CHECK(c.substr(c.size() - 2) == "\r\n");
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" with a year of at least four digits (and a
// sign for years before 0).
bool timestamp_shape(const std::string& s) {
  if (s.size() < 24)
    return false;
  auto tail = s.substr(s.size() - 20);
  const char* shape = "-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < 20; ++i)
    if (shape[i] == 'd' ? !(tail[i] >= '0' && tail[i] <= '9')
                        : tail[i] != shape[i])
      return false;
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::reader in{data, size};
  update u;
  u.id = in.take<uint64_t>();
  u.ts_ms = in.take<int64_t>();
  u.price = in.take<double>();
  auto retry_ms = in.take<int64_t>();
  bool has_oldest = (in.take<uint8_t>() & 1) != 0;
  auto oldest_raw = in.take<uint64_t>();
  std::optional<uint64_t> oldest;
  if (has_oldest)
    oldest = oldest_raw;
  auto requested = in.rest();

  auto retry = encode_retry(std::chrono::milliseconds{retry_ms});
  auto upd = encode_update(u);
  auto gap = encode_gap(requested, oldest);
  const auto& hb = heartbeat_frame();
  check_frame_bytes(retry);
  check_frame_bytes(upd->text());
  check_frame_bytes(gap->text());
  check_frame_bytes(hb->text());
  check_chunk(*upd);
  check_chunk(*gap);
  check_chunk(*hb);

  // The stream as a client sees it: retry, update, heartbeat, gap.
  sse_parser p;
  p.feed(retry);
  p.feed(upd->text());
  p.feed(hb->text());
  p.feed(gap->text());
  FUZZ_CHECK(p.pending.empty());
  FUZZ_CHECK(p.events.size() == 2);
  if (retry_ms >= 0)
    FUZZ_CHECK(p.retry == retry_ms);
  else
    FUZZ_CHECK(!p.retry);

  // The update: its id, and a JSON data line that reads back exactly.
  auto& e = p.events[0];
  FUZZ_CHECK(e.type == "message");
  FUZZ_CHECK(e.last_event_id == std::to_string(u.id));
  FUZZ_CHECK(e.data == update_data_json(u));
  auto doc = nlohmann::json::parse(e.data);
  FUZZ_CHECK(doc.is_object() && doc.size() == 2);
  auto ts = doc.at("timestamp").get<std::string>();
  FUZZ_CHECK(ts == format_timestamp(u.ts_ms));
  FUZZ_CHECK(timestamp_shape(ts));
  if (std::isfinite(u.price)) {
    FUZZ_CHECK(doc.at("price").is_number());
    FUZZ_CHECK(doc.at("price").get<double>() == u.price);
  } else {
    FUZZ_CHECK(doc.at("price").is_null());
  }
  // The REST form carries the same values.
  auto rest = nlohmann::json::parse(update_json(u));
  FUZZ_CHECK(rest.at("id").get<uint64_t>() == u.id);
  FUZZ_CHECK(rest.at("timestamp") == doc.at("timestamp"));
  FUZZ_CHECK(rest.at("price") == doc.at("price"));

  // The gap: its own type, no id of its own (the update's id stays), the
  // client's text back exactly when it was UTF-8.
  auto& g = p.events[1];
  FUZZ_CHECK(g.type == "gap");
  FUZZ_CHECK(g.last_event_id == std::to_string(u.id));
  auto gdoc = nlohmann::json::parse(g.data);
  FUZZ_CHECK(gdoc.is_object() && gdoc.size() == 2);
  auto back = gdoc.at("requested").get<std::string>();
  if (fuzz::valid_utf8(requested))
    FUZZ_CHECK(back == requested);
  else
    FUZZ_CHECK(fuzz::valid_utf8(back) && back != requested);
  if (oldest)
    FUZZ_CHECK(gdoc.at("oldest").get<uint64_t>() == *oldest);
  else
    FUZZ_CHECK(gdoc.at("oldest").is_null());

  // The same bytes split anywhere parse the same (CRLF never straddles:
  // there is no CR at all).
  sse_parser q;
  std::string all = retry;
  for (const auto* f : {upd.get(), hb.get(), gap.get()})
    all += f->text();
  auto cut = all.empty() ? 0 : static_cast<size_t>(oldest_raw % all.size());
  q.feed(std::string_view{all}.substr(0, cut));
  q.feed(std::string_view{all}.substr(cut));
  FUZZ_CHECK(q.events.size() == 2 && q.events[0].data == e.data
             && q.events[1].data == g.data);
  return 0;
}
