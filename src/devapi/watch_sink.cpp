#include "watch_sink.hpp"
#include <edgehub/wire/json_safe.hpp>

namespace edgehub::devapi::detail {

WatchSink::WatchSink(const ResourceInfo& resource, std::size_t queue_limit,
                     std::function<void()> wake)
    : resource_(resource),
      queue_limit_(queue_limit == 0 ? 1 : queue_limit),
      wake_(std::move(wake)) {}

bool WatchSink::admit_locked() {
  if (overflowed_ || closed_) return false;
  if (pending_events_ >= queue_limit_) {
    // Like the real server's cacher, drop the watcher rather than block the store or buffer
    // without bound; the client resumes from the last resourceVersion it saw.
    overflowed_ = true;
    pending_.clear();
    pending_events_ = 0;
    wake_locked();
    return false;
  }
  ++pending_events_;
  return true;
}

void WatchSink::wake_locked() {
  if (!wake_pending_) {
    wake_pending_ = true;
    wake_();
  }
}

void WatchSink::push_locked(std::string_view line) {
  if (!admit_locked()) return;
  pending_ += line;
  wake_locked();
}

void WatchSink::send_tables(std::string version, IncludeObject include) {
  std::lock_guard lock(mutex_);
  table_version_ = std::move(version);
  table_include_ = include;
}

void WatchSink::deliver(EventType type, const StoreEvent& event) {
  std::lock_guard lock(mutex_);
  if (!admit_locked()) return;
  if (!table_version_.empty()) {
    nlohmann::json table = to_table(resource_, *event.object, false, table_version_,
                                    table_include_, std::chrono::system_clock::now());
    if (table_header_sent_) table["columnDefinitions"] = nullptr;
    table_header_sent_ = true;
    pending_ += R"({"type":")";
    pending_ += to_string(type);
    pending_ += R"(","object":)";
    pending_ += wire::dump_json(table);
    pending_ += "}\n";
    wake_locked();
    return;
  }
  // Appended in place: this runs once per event per watcher under the store lock.
  pending_ += R"({"type":")";
  pending_ += to_string(type);
  pending_ += R"(","object":)";
  pending_ += *event.object_text;
  pending_ += "}\n";
  wake_locked();
}

void WatchSink::bookmark(std::uint64_t rv, bool initial_events_end) {
  nlohmann::json meta = {{"resourceVersion", std::to_string(rv)}};
  if (initial_events_end) meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
  const nlohmann::json object = {
      {"kind", resource_.kind}, {"apiVersion", resource_.api_version()}, {"metadata", meta}};
  std::string line = R"({"type":"BOOKMARK","object":)" + wire::dump_json(object) + "}\n";
  std::lock_guard lock(mutex_);
  push_locked(line);
}

void WatchSink::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  wake_locked();
}

WatchSink::Batch WatchSink::take_into(std::string& data) {
  data.clear();
  std::lock_guard lock(mutex_);
  Batch batch;
  data.swap(pending_);
  batch.events = pending_events_;
  batch.overflowed = overflowed_;
  batch.closed = closed_;
  pending_events_ = 0;
  wake_pending_ = false;
  return batch;
}

std::string WatchSink::overflow_line() const {
  return error_event_line(
      ApiError(500, "InternalError",
               "Internal error occurred: the watch of " + resource_.qualified_name() +
                   " fell more than " + std::to_string(queue_limit_) +
                   " events behind and was closed; resume from the last resourceVersion received"));
}

std::string error_event_line(const ApiError& error) {
  return R"({"type":"ERROR","object":)" + wire::dump_json(error.status()) + "}\n";
}

}  // namespace edgehub::devapi::detail
