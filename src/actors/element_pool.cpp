#include "actors/element_pool.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <utility>

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

/// What this thread's released elements leave behind: their memory, and
/// their references to the shared message. With two workers, every
/// element's release touched two cache lines that every other delivery
/// touched too, on the other core: the head of the process-wide stack, and
/// the message's reference count, which the broadcaster increments for
/// each element (perf: the two were ~20 % of the actor side's CPU). Here
/// a thread keeps both to itself:
/// - the memory, for a pool on this thread to reuse, handed on to the
///   shared stack `spill_at` elements at a time;
/// - the references to one message, dropped together, by this thread, when
///   it releases an element of another message (the next update), so that
///   the count's cache line crosses to this core once per update instead
///   of once per element.
/// A thread holds fewer than `spill_at` elements and at most one message,
/// and hands all back when it ends.
struct thread_cache {
  static constexpr size_t spill_at = 256;
  free_node* first = nullptr;
  free_node* last = nullptr;
  size_t size = 0;
  caf::detail::message_data* held = nullptr;
  size_t held_refs = 0;

  void push(free_node* node) noexcept {
    node->next = first;
    first = node;
    if (!last)
      last = node;
    if (++size >= spill_at)
      spill();
  }

  /// The whole list, for a pool on this thread.
  free_node* take_all() noexcept {
    auto* all = first;
    first = last = nullptr;
    size = 0;
    return all;
  }

  void spill() noexcept {
    if (first)
      returned().push(first, last);
    first = last = nullptr;
    size = 0;
  }

  /// Takes over one reference to `data`.
  void hold(caf::detail::message_data* data) noexcept {
    if (data != held)
      drop_held();
    held = data;
    ++held_refs;
  }

  void drop_held() noexcept {
    auto* data = held;
    auto refs = held_refs;
    held = nullptr; // the last release may run a destructor: be consistent
    held_refs = 0;
    for (; refs > 0; --refs)
      intrusive_ptr_release(data);
  }

  ~thread_cache();
};

/// Set once this thread's cache is destroyed, at thread exit. A
/// `thread_local` destroyed before the cache (constructed after it) may
/// still release an element: that one must not reach the destroyed cache.
/// Trivially destructible, so it stays readable until the thread is gone.
thread_local bool cache_gone = false;

thread_cache::~thread_cache() {
  drop_held();
  spill();
  cache_gone = true;
}

/// This thread's cache, or null once it is destroyed.
thread_cache* this_thread_cache() {
  if (cache_gone)
    return nullptr;
  thread_local thread_cache cache;
  return &cache;
}

/// A mailbox element holding a shared message, as CAF's own wrapper, whose
/// deletion returns its memory to the stack instead of the heap.
class pooled_element final : public caf::mailbox_element {
public:
  pooled_element(caf::message_id mid, caf::message msg)
      : caf::mailbox_element(nullptr, mid, {}), msg_(std::move(msg)) {}

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
    auto* cache = this_thread_cache();
    if (!cache) { // thread exit: straight to the shared stack
      self->~pooled_element();
      auto* node = new (static_cast<void*>(self)) free_node{nullptr};
      returned().push(node, node);
      return;
    }
    // Detached, so the destructor leaves the count alone; empty if a
    // handler moved the message out.
    auto* data = self->msg_.vals().release();
    self->~pooled_element();
    cache->push(new (static_cast<void*>(self)) free_node{nullptr});
    if (data)
      cache->hold(data);
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

element_pool& element_pool::of_this_thread() {
  thread_local element_pool pool;
  return pool;
}

void* element_pool::allocate() {
  if (!free_)
    if (auto* cache = this_thread_cache())
      free_ = cache->take_all();
  if (!free_)
    free_ = returned().take_all();
  if (free_) {
    void* mem = free_;
    free_ = free_->next;
    return mem;
  }
  returned().allocated.fetch_add(1, std::memory_order_relaxed);
  return ::operator new(std::max(sizeof(pooled_element), sizeof(free_node)));
}

caf::mailbox_element_ptr element_pool::make(caf::message_id mid,
                                            const caf::message& msg) {
  return caf::mailbox_element_ptr{new (allocate()) pooled_element(mid, msg)};
}

element_pool::counted_refs::counted_refs(const caf::message& msg, size_t n)
    : data(const_cast<caf::detail::message_data*>(msg.cvals().get())), left(n) {
  for (size_t i = 0; i < n; ++i)
    data->ref();
}

element_pool::counted_refs::~counted_refs() {
  for (; left > 0; --left)
    data->deref();
}

caf::mailbox_element_ptr element_pool::adopt(caf::message_id mid,
                                             counted_refs& refs) {
  auto* mem = allocate(); // may throw: `refs` still owns the reference
  --refs.left;
  return caf::mailbox_element_ptr{new (mem) pooled_element(
      mid, caf::message{caf::message::data_ptr{refs.data, false}})};
}

void element_pool::drop_held_messages() {
  if (auto* cache = this_thread_cache())
    cache->drop_held();
}

size_t element_pool::allocated() {
  return returned().allocated.load(std::memory_order_relaxed);
}

} // namespace btcstream
