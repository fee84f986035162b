#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/kube/watcher.hpp>
#include <spdlog/spdlog.h>

#include <random>

namespace edgehub::kube {

namespace asio = boost::asio;

std::shared_ptr<Watcher> Watcher::make(std::shared_ptr<Client> client, WatcherOptions options,
                                       OnEvent on_event, OnGap on_gap) {
  return std::shared_ptr<Watcher>(
      new Watcher(std::move(client), std::move(options), std::move(on_event), std::move(on_gap)));
}

Watcher::Watcher(std::shared_ptr<Client> client, WatcherOptions options, OnEvent on_event,
                 OnGap on_gap)
    : client_(std::move(client)),
      options_(std::move(options)),
      on_event_(std::move(on_event)),
      on_gap_(std::move(on_gap)),
      backoff_(options_.initial_backoff, options_.max_backoff, std::random_device{}()) {}

void Watcher::start() {
  asio::co_spawn(client_->executor(), [self = shared_from_this()] { return self->run(); },
                 asio::detached);
}

asio::awaitable<void> Watcher::run() {
  std::string rv;
  bool gap = false;  // a 410 lost events: tell the owner once watching again
  const auto pause = [&]() -> asio::awaitable<void> {
    ++stats_.errors;
    asio::steady_timer timer(co_await asio::this_coro::executor, backoff_.next());
    co_await timer.async_wait(asio::use_awaitable);
  };
  while (!stopped_) {
    if (rv.empty()) {
      // Named, not a braced temporary: GCC 12 destroys aggregate temporaries in a co_await
      // expression twice.
      const ListOptions head_options{.label_selector = options_.label_selector,
                                     .field_selector = options_.field_selector,
                                     .limit = 1,
                                     .priority = options_.priority};
      auto head = co_await client_->list(options_.resource, "", head_options);
      if (!head) {
        spdlog::warn("watch {}: cannot read the current resourceVersion: {}", options_.name,
                     head.error().describe());
        co_await pause();
        continue;
      }
      rv = head->resource_version;
    }
    bool expired = false;
    bool progressed = false;
    ++stats_.watches;
    WatchOptions watch{.label_selector = options_.label_selector,
                       .field_selector = options_.field_selector,
                       .resource_version = rv,
                       .allow_bookmarks = true,
                       .timeout_seconds = options_.watch_timeout_seconds,
                       .priority = options_.priority};
    if (gap) {
      // Watching again from a fresh version: the owner resyncs what the gap may have hidden.
      ++stats_.gaps;
      gap = false;
      if (on_gap_) on_gap_();
    }
    established_ = true;
    auto result = co_await client_->watch(
        options_.resource, "", watch, [&](WatchEvent&& ev) {
          if (stopped_) return false;
          if (ev.type == EventType::Error) {
            if (ev.error && ev.error->is(ErrorKind::Gone)) expired = true;
            else spdlog::warn("watch {}: error event: {}", options_.name,
                              ev.error ? ev.error->describe() : ev.object.raw);
            return false;
          }
          progressed = true;
          if (!ev.object.meta.resource_version.empty()) rv = ev.object.meta.resource_version;
          if (ev.type == EventType::Bookmark) return true;
          ++stats_.events;
          on_event_(std::move(ev));
          return true;
        });
    if (stopped_) break;
    if (!result && result.error().is(ErrorKind::Gone)) expired = true;
    if (expired) {
      spdlog::info("watch {}: resourceVersion {} expired; watching from now and resyncing",
                   options_.name, rv);
      rv.clear();
      gap = true;
      continue;
    }
    if (!result) {
      spdlog::warn("watch {}: {}", options_.name, result.error().describe());
      co_await pause();
      continue;
    }
    if (progressed) backoff_.reset();
  }
}

}  // namespace edgehub::kube
