#include "cluster/redis_reply.hpp"

#include <hiredis/hiredis.h>

#include <string>
#include <vector>

namespace btcstream {

namespace {

constexpr int max_reply_elements = 1'000'000;

void* (*default_create_array)(const redisReadTask*, int) = nullptr;

void* bounded_create_array(const redisReadTask* task, int elements) {
  if (elements > max_reply_elements)
    return nullptr; // hiredis: "Out of memory", the reply fails
  return default_create_array(task, elements);
}

/// hiredis's reply functions with the bound; one table for every reader.
redisReplyObjectFunctions* bounded_functions(redisReplyObjectFunctions* base) {
  static redisReplyObjectFunctions fns = [base] {
    auto f = *base;
    default_create_array = f.createArray;
    f.createArray = bounded_create_array;
    return f;
  }();
  return &fns;
}

} // namespace

redisReader* make_bounded_reader() {
  auto* reader = redisReaderCreate();
  if (reader)
    reader->fn = bounded_functions(reader->fn);
  return reader;
}

redis_value to_redis_value(const redisReply* r) {
  switch (r->type) {
  case REDIS_REPLY_INTEGER:
    return redis_value::of_integer(r->integer);
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    return redis_value::of_string(std::string(r->str, r->len));
  case REDIS_REPLY_ERROR:
    return redis_value::of_error(std::string(r->str, r->len));
  case REDIS_REPLY_ARRAY: {
    std::vector<redis_value> elements;
    elements.reserve(r->elements);
    for (size_t i = 0; i < r->elements; ++i)
      elements.push_back(to_redis_value(r->element[i]));
    return redis_value::of_array(std::move(elements));
  }
  default:
    return redis_value::nil();
  }
}

} // namespace btcstream
