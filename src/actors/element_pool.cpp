#include "actors/element_pool.hpp"

#include <algorithm>
#include <atomic>
#include <new>

namespace btcstream {

namespace {

using free_node = element_pool::free_node;

/// Where elements go when their receivers are done with them: a lock-free
/// stack that any thread pushes onto and a pool takes whole. Taking all at
/// once (an exchange, never a pop of one node) is what keeps it free of
/// the ABA problem.
struct returned_stack {
  std::atomic<free_node*> head{nullptr};
  std::atomic<size_t> allocated{0};

  void push(free_node* first, free_node* last) noexcept {
    last->next = head.load(std::memory_order_relaxed);
    while (!head.compare_exchange_weak(last->next, first,
                                       std::memory_order_release,
                                       std::memory_order_relaxed)) {
    }
  }

  free_node* take_all() noexcept {
    return head.exchange(nullptr, std::memory_order_acquire);
  }
};

/// Never destroyed: an element may come back while the process exits, after
/// every static destructor that could have freed it. Reachable, so the leak
/// checker does not count what it holds.
returned_stack& returned() {
  static auto* stack = new returned_stack;
  return *stack;
}

/// A mailbox element holding a shared message, as CAF's own wrapper, whose
/// deletion returns its memory to the stack instead of the heap.
class pooled_element final : public caf::mailbox_element {
public:
  pooled_element(caf::message_id mid, const caf::message& msg)
      : caf::mailbox_element(nullptr, mid, {}), msg_(msg) {}

  // As CAF 0.17's own wrapper: the message is its own type-erased view,
  // which copies the shared data only if a handler asks to mutate it (ours
  // take const references).
  caf::type_erased_tuple& content() override { return msg_; }

  const caf::type_erased_tuple& content() const override {
    return msg_.content();
  }

  caf::message move_content_to_message() override { return std::move(msg_); }

  caf::message copy_content_to_message() const override { return msg_; }

  void request_deletion(bool) const noexcept override {
    auto* self = const_cast<pooled_element*>(this);
    self->~pooled_element();
    auto* node = new (static_cast<void*>(self)) free_node{nullptr};
    returned().push(node, node);
  }

private:
  caf::message msg_;
};

} // namespace

element_pool::~element_pool() {
  if (!free_)
    return;
  auto* last = free_;
  while (last->next)
    last = last->next;
  returned().push(free_, last);
}

caf::mailbox_element_ptr element_pool::make(caf::message_id mid,
                                            const caf::message& msg) {
  if (!free_)
    free_ = returned().take_all();
  void* mem;
  if (free_) {
    mem = free_;
    free_ = free_->next;
  } else {
    mem = ::operator new(std::max(sizeof(pooled_element), sizeof(free_node)));
    returned().allocated.fetch_add(1, std::memory_order_relaxed);
  }
  return caf::mailbox_element_ptr{new (mem) pooled_element(mid, msg)};
}

size_t element_pool::allocated() {
  return returned().allocated.load(std::memory_order_relaxed);
}

} // namespace btcstream
