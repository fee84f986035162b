// The store-side end of one watch connection: a bounded, thread-safe queue of encoded watch
// event lines. The store appends under its own lock without ever waiting; the connection's
// I/O thread takes everything queued at once and writes it as one chunk.
#pragma once

#include <edgehub/devapi/store.hpp>
#include <functional>
#include <mutex>
#include <string>

#include "table.hpp"

namespace edgehub::devapi::detail {

class WatchSink final : public Watcher {
 public:
  // wake: called (at most once per take()) when there is something new to write; it must only
  // post work to the connection's thread.
  WatchSink(const ResourceInfo& resource, std::size_t queue_limit, std::function<void()> wake);
  // Events carry one-row Tables instead of the objects (kubectl get -w); the column
  // definitions come with the first event only, as kube-apiserver sends them.
  void send_tables(std::string version, IncludeObject include);

  void deliver(EventType type, const StoreEvent& event) override;
  void bookmark(std::uint64_t rv, bool initial_events_end) override;
  void close() override;

  struct Batch {
    std::size_t events = 0;
    bool overflowed = false;  // the watcher fell too far behind: end the stream with an error
    bool closed = false;      // close() was called
  };
  // Moves the queued lines into `data` (complete lines; its old contents are discarded and its
  // storage is reused for the next batch).
  Batch take_into(std::string& data);

  // The ERROR event line sent to a watcher that fell behind.
  std::string overflow_line() const;

 private:
  bool admit_locked();  // counts one more queued event, or overflows
  void wake_locked();
  void push_locked(std::string_view line);

  const ResourceInfo& resource_;
  const std::size_t queue_limit_;
  std::function<void()> wake_;
  std::mutex mutex_;
  std::string pending_;
  std::size_t pending_events_ = 0;
  bool overflowed_ = false;
  bool closed_ = false;
  bool wake_pending_ = false;
  std::string table_version_;  // empty: plain objects
  IncludeObject table_include_ = IncludeObject::Metadata;
  bool table_header_sent_ = false;
};

// {"type":"ERROR","object":<Status>}\n
std::string error_event_line(const ApiError& error);

}  // namespace edgehub::devapi::detail
