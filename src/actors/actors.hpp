#pragma once

#include "actors/atoms.hpp"
#include "core/cluster_log.hpp"
#include "core/frame_sink.hpp"
#include "core/query.hpp"
#include "core/ring_buffer.hpp"
#include "core/update.hpp"
#include "core/upstream_client.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace btcstream {

/// One SSE client: holds its resume point and runs the seam (DESIGN.md).
using connection_actor = caf::typed_actor<
    // A stored update to forward, from the broadcaster.
    caf::reacts_to<atom::live, stored>,
    // No traffic for --heartbeat: write `: hb`, from the broadcaster.
    caf::reacts_to<atom::heartbeat>,
    // The session ended (closed, slow, stalled), from the HTTP session.
    caf::reacts_to<atom::session, session_state>,
    // The stream reached --max-stream-age: end it cleanly, from itself.
    caf::reacts_to<atom::retire>,
    // The broadcaster ended for this reason: end too, from the broadcaster.
    caf::reacts_to<atom::ended, caf::error>>;

/// Fans every stored update out to the subscribed connections and drives
/// the one heartbeat timer for all of them.
using broadcaster_actor = caf::typed_actor<
    // A newly stored update, from the buffer.
    caf::reacts_to<atom::publish, stored>,
    // Subscribes (and monitors) a connection; replies with the id of the last
    // update forwarded so far, 0 if none: the `upto` of the seam.
    caf::replies_to<atom::subscribe, connection_actor>::with<uint64_t>,
    // The heartbeat timer, from itself.
    caf::reacts_to<atom::heartbeat>,
    // Health round trip; replies with the number of subscribers.
    caf::replies_to<atom::ping>::with<uint64_t>>;

/// Where the fetcher hands each valid update: the buffer (one node) or the
/// bus (cluster mode).
using update_sink_actor
    = caf::typed_actor<caf::reacts_to<atom::publish, update>>;

/// The TTL ring buffer: encodes each update once and answers history queries.
using buffer_actor = caf::typed_actor<
    // A validated update with its id, from the fetcher (one node).
    caf::reacts_to<atom::publish, update>,
    // An update of the state file, at start (one node): stored and passed
    // on like a published one, but not counted as published.
    caf::reacts_to<atom::restore, update>,
    // An entry of the cluster's log, in log order, from the reader.
    caf::reacts_to<atom::ingest, log_entry>,
    // A lagging node's wait for a resume id ends, from itself.
    caf::reacts_to<atom::wait, uint64_t>,
    // Frames after a resume point up to `upto`, from a connection.
    caf::replies_to<atom::history, resume_point, uint64_t>::with<history>,
    // The latest update stored, expired or not (REST, readiness), from the
    // front end.
    caf::replies_to<atom::latest>::with<std::optional<update>>,
    // Buffered updates with ts_ms >= the bound (all without one), oldest
    // first (REST), from the front end.
    caf::replies_to<atom::updates,
                    std::optional<int64_t>>::with<std::vector<update>>,
    // Health round trip; replies with the number of buffered updates.
    caf::replies_to<atom::ping>::with<uint64_t>>;

/// Polls the upstream on a fixed-rate schedule and assigns event ids.
using fetcher_actor = caf::typed_actor<
    // The schedule, from itself; stale unless the number matches.
    caf::reacts_to<atom::tick, uint64_t>,
    // Poll until the given time (on CAF's clock, since its epoch): the
    // lease's deadline. Starts polling, the first request after the delay,
    // if stopped; from the bus when this node acquires or renews the lease.
    caf::reacts_to<atom::lead, caf::timespan, caf::timespan>,
    // Stop polling and drop what is in flight; from the bus when the lease
    // is lost or cannot be renewed in time.
    caf::reacts_to<atom::follow>,
    // A retry after a failure, from itself; stale unless the number matches.
    caf::reacts_to<atom::retry, uint64_t>,
    // The outcome of one request, from the upstream client's thread.
    caf::reacts_to<atom::fetched, fetch_result>,
    // Health round trip; replies with the last id assigned (0 if none).
    caf::replies_to<atom::ping>::with<uint64_t>>;

/// Cluster mode: holds the lease (the only poller) and appends the
/// fetcher's updates to the log, fenced by the lease's token.
using bus_actor = caf::typed_actor<
    // A validated update, from the fetcher (while this node leads).
    caf::reacts_to<atom::publish, update>,
    // The fetcher to start and stop, from the wiring (once: the fetcher
    // needs the bus as its sink first).
    caf::reacts_to<atom::poller, fetcher_actor>,
    // The lease timer: acquire or renew, or give up in time; from itself.
    caf::reacts_to<atom::tick>,
    // The lease as Redis holds it, for the request sent at the given steady
    // time (ns); from the log's callback.
    caf::reacts_to<atom::lease, int64_t, lease_reply>,
    // The outcome of an append, from the log's callback.
    caf::reacts_to<atom::appended, append_reply>,
    // The newest entry this node has read from the log, from the reader.
    caf::reacts_to<atom::ingest, log_entry>,
    // The lease holder's node id as last seen ("" when none), from the front
    // end (/api/v1/info).
    caf::replies_to<atom::leader>::with<std::string>,
    // A clean shutdown, from the wiring: stop polling, never ask for the
    // lease again, and delete it in Redis if it is still ours so that
    // another node takes over at once; replies whether it was deleted.
    caf::replies_to<atom::release>::with<bool>,
    // The outcome of the release, from the log's callback.
    caf::reacts_to<atom::release, release_reply>,
    // Health round trip; replies with 1 while this node leads, else 0.
    caf::replies_to<atom::ping>::with<uint64_t>>;

/// Cluster mode: follows the log (backfill, then blocking reads) and feeds
/// the buffer with every entry, in order.
using reader_actor = caf::typed_actor<
    // Start the next read, from itself.
    caf::reacts_to<atom::read>,
    // The outcome of a read, from the log's callback.
    caf::reacts_to<atom::got, read_reply>,
    // Health round trip; replies with the newest id read (0 if none).
    caf::replies_to<atom::ping>::with<uint64_t>>;

} // namespace btcstream

// Message payloads. They are only ever sent between actors of one process,
// never serialised, so CAF needs no inspect() for them; frames travel as
// shared immutable strings (one copy for every receiver).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::update)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::stored)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::history)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::resume_point)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::fetch_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::session_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<btcstream::update>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<btcstream::update>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<int64_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::log_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::lease_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::append_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::release_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(btcstream::read_reply)
