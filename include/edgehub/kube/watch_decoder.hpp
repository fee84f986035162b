#pragma once

#include <edgehub/kube/object.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace edgehub::kube {

// Splits a watch stream (one JSON event per line, arbitrary chunking) into events. Only the
// unfinished tail line is buffered, never the stream.
class WatchDecoder {
 public:
  // Return false to stop decoding (the rest of the data is ignored).
  using Sink = std::function<bool(WatchEvent&&)>;

  explicit WatchDecoder(std::size_t max_line_bytes = 16u << 20) : max_line_(max_line_bytes) {}

  // Decodes every complete line in `data`. Fails on a malformed event or an oversized line.
  Result<bool> feed(std::string_view data, const Sink& sink);
  // End of stream: a last event without its newline is still delivered; a truncated one
  // fails with StreamBroken.
  Result<void> finish(const Sink& sink);
  std::size_t events() const noexcept { return events_; }

 private:
  Result<bool> line(std::string_view text, const Sink& sink);

  std::string pending_;
  std::size_t max_line_;
  std::size_t events_ = 0;
};

}  // namespace edgehub::kube
