#pragma once

#include <caf/mailbox_element.hpp>

#include <atomic>
#include <cstdint>

namespace btcstream {

/// A hand-written actor's mailbox: a lock-free stack of mailbox elements
/// that many threads push onto and one reader (the actor, in its turn)
/// empties at once. It is blocked while the reader waits for a message (the
/// pusher that ends the wait schedules the actor) and closed once the actor
/// has ended. The same protocol as CAF 0.17's `lifo_inbox`, minus its four
/// category queues: for actors whose messages all have one priority.
class inbox {
public:
  enum class pushed {
    queued,      ///< the reader is running or already scheduled
    woke_reader, ///< the reader was blocked: the caller schedules it
    closed,      ///< the actor has ended: the element stays with the caller
  };

  inbox() = default;
  inbox(const inbox&) = delete;
  inbox& operator=(const inbox&) = delete;
  ~inbox() { release(head_.exchange(closed_tag())); }

  /// Any thread. On `closed`, `e` is left as it was.
  pushed push(caf::mailbox_element_ptr& e) noexcept {
    auto* head = head_.load(std::memory_order_relaxed);
    do {
      if (head == closed_tag())
        return pushed::closed;
      e->next = head == blocked_tag() ? nullptr : head;
    } while (!head_.compare_exchange_weak(
        head, e.get(), std::memory_order_release, std::memory_order_relaxed));
    e.release();
    return head == blocked_tag() ? pushed::woke_reader : pushed::queued;
  }

  /// The reader, in its turn (woken, not yet blocked again, not closed):
  /// everything queued, oldest first (a list linked by `next`; the caller
  /// owns it), or nullptr.
  caf::mailbox_element* take_all() noexcept {
    caf::mailbox_element* oldest = nullptr;
    auto* e = head_.exchange(nullptr, std::memory_order_acquire);
    while (e != nullptr) {
      auto* next = static_cast<caf::mailbox_element*>(e->next);
      e->next = oldest;
      oldest = e;
      e = next;
    }
    return oldest;
  }

  /// The reader, when it has nothing left: true if it may wait (the next
  /// push wakes it), false if a message came in meanwhile.
  bool try_block() noexcept {
    caf::mailbox_element* empty = nullptr;
    return head_.compare_exchange_strong(empty, blocked_tag(),
                                         std::memory_order_acq_rel);
  }

  /// The reader, when the actor ends: what was still queued (the caller
  /// owns it); every later push answers `closed`.
  caf::mailbox_element* close() noexcept {
    auto* e = head_.exchange(closed_tag(), std::memory_order_acquire);
    return e == blocked_tag() || e == closed_tag() ? nullptr : e;
  }

  bool closed() const noexcept {
    return head_.load(std::memory_order_acquire) == closed_tag();
  }

private:
  /// Drops a list of elements linked by `next`.
  static void release(caf::mailbox_element* e) noexcept {
    while (e != nullptr && e != blocked_tag() && e != closed_tag()) {
      auto* next = static_cast<caf::mailbox_element*>(e->next);
      caf::mailbox_element_ptr drop{e};
      e = next;
    }
  }

  static caf::mailbox_element* blocked_tag() noexcept {
    return reinterpret_cast<caf::mailbox_element*>(uintptr_t{1});
  }
  static caf::mailbox_element* closed_tag() noexcept {
    return reinterpret_cast<caf::mailbox_element*>(uintptr_t{2});
  }

  /// Starts blocked: the actor is scheduled by its first message.
  std::atomic<caf::mailbox_element*> head_{blocked_tag()};
};

} // namespace btcstream
