#pragma once

#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

#include <algorithm>
#include <cstddef>

namespace btcstream {

/// Mailbox elements for a fan-out, recycled instead of allocated per
/// receiver. CAF allocates a mailbox element for every message sent; when
/// one thread made a fan-out's 10,000 of them and the other worker freed
/// most of them, glibc's malloc and free for those were the largest part of
/// the actor side's CPU (docs/performance.md, issue 14). The broadcaster's
/// shards use their thread's pool (of_this_thread), and their receivers
/// mostly release on that thread too. An element from here goes back, when
/// its receiver is done with it, to its receiver's thread, which reuses it
/// for a pool on that thread or hands it on, 256 at a time, to one
/// process-wide stack (one compare-and-swap per list), from which the
/// sender takes the whole stack at once (one exchange) when its own list
/// is empty. Its reference to the message stays with that thread until the
/// thread releases an element of another message (drop_held_messages) or
/// ends; an element released after the thread's cache is gone, at thread
/// exit, goes straight to the shared stack and drops its reference at once.
///
/// CAF provides for this: a mailbox element is `memory_managed`, and CAF
/// releases one only through its `request_deletion`.
///
/// Memory: every element ever made stays in the pool, so it holds as many
/// as were once in flight at the same time (one per receiver and unhandled
/// message: ~1 MB per 10,000 subscribers). Unlike malloc's free lists, it
/// lends none of that memory to other allocations.
class element_pool {
public:
  element_pool() = default;
  element_pool(const element_pool&) = delete;
  element_pool& operator=(const element_pool&) = delete;
  /// Hands its unused elements to the process-wide stack.
  ~element_pool();

  /// This thread's pool, for senders that may run on any thread (the
  /// broadcaster's shards): the elements a thread's fan-outs make are then
  /// the ones its receivers released on it.
  static element_pool& of_this_thread();

  /// An anonymous mailbox element holding `msg` (shared, not copied; not
  /// empty, and not a stream message: CAF files those apart). Only
  /// one thread at a time may call this (the owning actor's).
  caf::mailbox_element_ptr make(caf::message_id mid, const caf::message& msg);

  /// A fan-out: `send(i, element)` for each `i` in [0, n), each element as
  /// `make(mid, msg)` would make it. The elements' references to the
  /// message are counted `ref_block` at a time, before any receiver of the
  /// block can read the message: an increment of a count whose cache line
  /// another core has just read waits for the line to come back, and with
  /// two workers that was the most costly load of the fan-out (perf).
  template<class Send>
  void make_each(caf::message_id mid, const caf::message& msg, size_t n,
                 Send&& send) {
    for (size_t i = 0; i < n;) {
      counted_refs refs{msg, std::min(n - i, ref_block)};
      for (auto end = i + refs.left; i < end; ++i)
        send(i, adopt(mid, refs));
    }
  }

  /// Releases the message references that this thread's released
  /// elements still hold. An element's release leaves its reference to
  /// the update's message with its thread, which drops them all at once
  /// when it releases an element of another message, or ends: so each
  /// thread keeps at most one message alive. For tests, and for a thread
  /// that must not keep even that one.
  static void drop_held_messages();

  /// Elements ever allocated by any pool in this process (for tests).
  static size_t allocated();

  /// A free element's memory: a link in a list of free elements.
  struct free_node {
    free_node* next;
  };

private:
  static constexpr size_t ref_block = 256;

  /// References to a message's data, counted at once; those not handed to
  /// an element are released again.
  struct counted_refs {
    counted_refs(const caf::message& msg, size_t n);
    ~counted_refs();
    counted_refs(const counted_refs&) = delete;
    counted_refs& operator=(const counted_refs&) = delete;
    caf::detail::message_data* data;
    size_t left;
  };

  /// An element holding one of `refs`.
  caf::mailbox_element_ptr adopt(caf::message_id mid, counted_refs& refs);

  /// Memory for one element.
  void* allocate();

  free_node* free_ = nullptr; // taken from the process-wide stack
};

} // namespace btcstream
