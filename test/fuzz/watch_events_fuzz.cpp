// Watch-event decoding (kube::WatchDecoder) of an API server's watch stream, fed in chunks
// whose sizes the input chooses: the first byte seeds the chunk sizes, the rest is the stream.
// The same stream fed in one piece must give the same events and the same outcome, since the
// network may split it anywhere.

#include <edgehub/kube/watch_decoder.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Outcome {
  std::vector<std::string> events;  // type, key, resource version and raw object of each
  bool failed = false;
  std::size_t count = 0;
};

Outcome decode(std::string_view stream, std::uint8_t seed) {
  edgehub::kube::WatchDecoder decoder;
  Outcome out;
  const auto sink = [&out](edgehub::kube::WatchEvent&& event) {
    out.events.push_back(std::string(edgehub::kube::to_string(event.type)) + " " +
                         event.object.key() + " " + event.object.meta.resource_version + " " +
                         event.object.raw);
    // Stop after a few events sometimes, as a watcher being shut down does.
    return out.events.size() < 64;
  };
  std::size_t next = 0;
  std::uint32_t state = seed;
  bool stopped = false;
  while (next < stream.size()) {
    // seed 0 feeds everything at once; otherwise chunks of 1..seed bytes.
    std::size_t size = stream.size() - next;
    if (seed != 0) {
      state = state * 1103515245u + 12345u;
      size = std::min<std::size_t>(size, 1 + (state >> 16) % seed);
    }
    auto fed = decoder.feed(stream.substr(next, size), sink);
    next += size;
    if (!fed) {
      out.failed = true;
      break;
    }
    if (!*fed) {
      stopped = true;
      break;
    }
  }
  if (!out.failed && !stopped && !decoder.finish(sink)) out.failed = true;
  out.count = decoder.events();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome chunked = decode(stream, data[0]);
  const Outcome whole = decode(stream, 0);
  if (chunked.events != whole.events || chunked.failed != whole.failed) std::abort();
  return 0;
}
