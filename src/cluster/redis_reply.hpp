#pragma once

#include "core/redis_value.hpp"

struct redisReader;
struct redisReply;

namespace btcstream {

/// A hiredis reply reader whose multi-bulk arrays are bounded to a million
/// elements: hiredis 0.14 allocates an array from its announced count alone
/// (a 14-byte `*1182722110` asks for 9 GB before any element arrives; 1.x
/// has maxelements). A larger count fails the reply as out of memory.
/// Free it with redisReaderFree.
redisReader* make_bounded_reader();

/// Copies a hiredis reply into our own type; the caller frees the original.
redis_value to_redis_value(const redisReply* r);

} // namespace btcstream
