#pragma once

#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

namespace btcstream {

/// Mailbox elements for one sender's fan-out, recycled instead of allocated
/// per receiver. CAF allocates a mailbox element for every message sent;
/// in a fan-out the broadcaster's thread allocates 10,000 of them and the
/// other worker frees most of them, and with two workers glibc's malloc
/// and free for those was the largest part of the actor side's CPU
/// (docs/performance.md, issue 14). An element from here goes back, when
/// its receiver is done with it, onto one process-wide stack (one
/// compare-and-swap per element, nothing else) from which the sender takes
/// the whole stack at once (one exchange) when its own list is empty.
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

  /// An anonymous mailbox element holding `msg` (shared, not copied; not
  /// empty, and not a stream message: CAF files those apart). Only
  /// one thread at a time may call this (the owning actor's).
  caf::mailbox_element_ptr make(caf::message_id mid, const caf::message& msg);

  /// Elements ever allocated by any pool in this process (for tests).
  static size_t allocated();

  /// A free element's memory: a link in a list of free elements.
  struct free_node {
    free_node* next;
  };

private:
  free_node* free_ = nullptr; // taken from the process-wide stack
};

} // namespace btcstream
