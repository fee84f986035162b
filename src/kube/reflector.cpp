#include <edgehub/kube/reflector.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace edgehub::kube {

namespace net = boost::asio;

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint32_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))), max_(std::max(max, initial_)),
      current_(initial_), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  auto d = current_;
  current_ = std::min(max_, current_ * 2);
  std::uniform_int_distribution<std::int64_t> jitter(d.count() / 2, d.count());
  return std::chrono::milliseconds(jitter(rng_));
}

std::shared_ptr<Reflector> Reflector::make(std::shared_ptr<Client> client, ReflectorOptions options,
                                           ReflectorHandler& handler) {
  return std::shared_ptr<Reflector>(new Reflector(std::move(client), std::move(options), handler));
}

Reflector::Reflector(std::shared_ptr<Client> client, ReflectorOptions options,
                     ReflectorHandler& handler)
    : client_(std::move(client)), options_(std::move(options)), handler_(handler),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.seed),
      rng_(options_.seed + 1) {}

void Reflector::start() {
  net::post(client_->executor(), [self = shared_from_this()] {
    if (self->running_ || self->stopped_) return;
    self->running_ = true;
    net::co_spawn(self->client_->executor(), self->run(),
                  net::bind_cancellation_slot(self->cancel_.slot(), net::detached));
  });
}

void Reflector::stop() {
  net::post(client_->executor(), [self = shared_from_this()] {
    if (self->stopped_) return;
    self->stopped_ = true;
    if (self->running_) {
      self->cancel_.emit(net::cancellation_type::terminal);
    } else if (self->options_.on_stopped) {
      self->options_.on_stopped();
    }
  });
}

namespace {

std::string key_of(const ObjectMeta& m) {
  return m.namespace_.empty() ? m.name : m.namespace_ + "/" + m.name;
}

std::string describe(const ReflectorOptions& o) {
  std::string out = o.resource.group.empty() ? o.resource.plural : o.resource.plural + "." + o.resource.group;
  if (!o.field_selector.empty()) out += " [" + o.field_selector + "]";
  if (!o.label_selector.empty()) out += " {" + o.label_selector + "}";
  return out;
}

}  // namespace

net::awaitable<void> Reflector::pause(std::chrono::milliseconds delay) {
  net::steady_timer timer(client_->executor(), delay);
  co_await timer.async_wait(net::as_tuple(net::use_awaitable));
}

net::awaitable<Result<void>> Reflector::relist() {
  ListOptions lo;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  lo.limit = options_.page_size;
  lo.priority = options_.priority;
  if (stats_.lists == 0) lo.resource_version = options_.initial_list_resource_version;
  auto list = co_await client_->list_all(options_.resource, options_.namespace_, lo);
  if (!list) co_return list.error();
  if (stopped_) co_return Result<void>{};
  ++stats_.lists;

  std::unordered_map<std::string, Known> fresh;
  fresh.reserve(list->items.size());
  for (const auto& item : list->items) {
    fresh[key_of(item.meta)] = Known{item.meta.uid, item.meta.resource_version};
  }
  // Objects known before but absent now (or replaced under the same name) were deleted while
  // we were not watching.
  for (const auto& [key, known] : known_) {
    auto it = fresh.find(key);
    if (it != fresh.end() && it->second.uid == known.uid) continue;
    Object gone;
    auto slash = key.find('/');
    if (slash != std::string::npos) {
      gone.meta.namespace_ = key.substr(0, slash);
      gone.meta.name = key.substr(slash + 1);
    } else {
      gone.meta.name = key;
    }
    gone.meta.uid = known.uid;
    gone.meta.resource_version = known.resource_version;
    handler_.on_deleted(gone);
  }
  known_ = std::move(fresh);
  resource_version_ = list->resource_version;
  handler_.on_resynced(list->items);
  co_return Result<void>{};
}

bool Reflector::apply(WatchEvent&& ev, bool& expired, std::optional<Error>& failure) {
  if (stopped_) return false;
  ++stats_.events;
  Object& obj = ev.object;
  switch (ev.type) {
    case EventType::Bookmark:
      ++stats_.bookmarks;
      if (!obj.meta.resource_version.empty()) resource_version_ = obj.meta.resource_version;
      return true;
    case EventType::Error:
      if (ev.error && ev.error->kind == ErrorKind::Gone) {
        expired = true;
      } else {
        failure = ev.error.value_or(make_error(ErrorKind::Protocol, "watch ERROR event"));
      }
      return false;
    case EventType::Added:
    case EventType::Modified:
      known_[key_of(obj.meta)] = Known{obj.meta.uid, obj.meta.resource_version};
      break;
    case EventType::Deleted:
      known_.erase(key_of(obj.meta));
      break;
  }
  if (!obj.meta.resource_version.empty()) resource_version_ = obj.meta.resource_version;
  if (ev.type == EventType::Added) {
    handler_.on_added(obj);
  } else if (ev.type == EventType::Modified) {
    handler_.on_modified(obj);
  } else {
    handler_.on_deleted(obj);
  }
  return true;
}

net::awaitable<Result<void>> Reflector::watch(bool& expired, bool& progressed) {
  WatchOptions wo;
  wo.label_selector = options_.label_selector;
  wo.field_selector = options_.field_selector;
  wo.resource_version = resource_version_;
  wo.allow_bookmarks = true;
  wo.priority = options_.priority;
  if (options_.watch_timeout_seconds > 0) {
    std::uniform_int_distribution<int> spread(0, options_.watch_timeout_seconds - 1);
    wo.timeout_seconds = options_.watch_timeout_seconds + spread(rng_);
  }
  ++stats_.watches;
  std::optional<Error> failure;
  auto r = co_await client_->watch(options_.resource, options_.namespace_, wo,
                                   [&](WatchEvent&& ev) {
                                     progressed = true;
                                     return apply(std::move(ev), expired, failure);
                                   });
  if (!r) {
    if (r.error().kind == ErrorKind::Gone) expired = true;
    co_return r.error();
  }
  if (failure) co_return *failure;
  co_return Result<void>{};
}

net::awaitable<void> Reflector::run() {
  auto self = shared_from_this();
  const std::string what = describe(options_);
  bool need_list = true;
  try {
    while (!stopped_) {
      std::chrono::milliseconds delay{0};
      if (need_list) {
        auto r = co_await relist();
        if (stopped_) break;
        if (r) {
          need_list = false;
          backoff_.reset();
          continue;
        }
        ++stats_.errors;
        delay = backoff_.next();
        if (r.error().retry_after) delay = std::max<std::chrono::milliseconds>(delay, *r.error().retry_after);
        spdlog::warn("kube: list {} failed: {}; retrying in {} ms", what, r.error().describe(), delay.count());
      } else {
        bool expired = false, progressed = false;
        auto r = co_await watch(expired, progressed);
        if (stopped_) break;
        if (expired) {
          ++stats_.expired;
          spdlog::info("kube: watch {} from resourceVersion {} expired; relisting", what, resource_version_);
          need_list = true;
          continue;
        }
        if (r && progressed) {
          backoff_.reset();
          continue;  // the server ended the watch: resume from the last resourceVersion
        }
        if (r) {
          // Ended without a single event: not an error, but never spin on a server that
          // closes watches at once.
          co_await pause(backoff_.next());
          continue;
        }
        ++stats_.errors;
        if (progressed) backoff_.reset();
        delay = backoff_.next();
        if (r.error().retry_after) delay = std::max<std::chrono::milliseconds>(delay, *r.error().retry_after);
        spdlog::warn("kube: watch {} failed: {}; resuming from resourceVersion {} in {} ms", what,
                     r.error().describe(), resource_version_, delay.count());
      }
      co_await pause(delay);
    }
  } catch (const std::exception& e) {
    if (!stopped_) spdlog::error("kube: reflector {} ended: {}", what, e.what());
  }
  running_ = false;
  if (options_.on_stopped) options_.on_stopped();
}

}  // namespace edgehub::kube
