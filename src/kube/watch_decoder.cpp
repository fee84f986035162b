#include <edgehub/kube/watch_decoder.hpp>

namespace edgehub::kube {

namespace {
bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}
}  // namespace

Result<bool> WatchDecoder::line(std::string_view text, const Sink& sink) {
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (blank(text)) return true;
  auto ev = decode_watch_event(text);
  if (!ev) return ev.error();
  ++events_;
  return sink(std::move(*ev));
}

Result<bool> WatchDecoder::feed(std::string_view data, const Sink& sink) {
  while (!data.empty()) {
    auto nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (pending_.size() + data.size() > max_line_) {
        return make_error(ErrorKind::Protocol, "watch event larger than " +
                                                   std::to_string(max_line_) + " bytes");
      }
      pending_.append(data);
      return true;
    }
    Result<bool> more = true;
    if (pending_.empty()) {
      more = line(data.substr(0, nl), sink);
    } else {
      pending_.append(data.substr(0, nl));
      more = line(pending_, sink);
      pending_.clear();
    }
    if (!more) return more;
    if (!*more) return false;
    data.remove_prefix(nl + 1);
  }
  return true;
}

Result<void> WatchDecoder::finish(const Sink& sink) {
  if (blank(pending_)) return {};
  std::string tail = std::move(pending_);
  pending_.clear();
  if (auto ev = decode_watch_event(tail)) {
    ++events_;
    sink(std::move(*ev));
    return {};
  }
  return make_error(ErrorKind::StreamBroken,
                    "watch stream ended inside an event (" + std::to_string(tail.size()) +
                        " bytes pending)");
}

}  // namespace edgehub::kube
