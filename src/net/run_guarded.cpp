#include <edgehub/net/run_guarded.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::net {

void run_guarded(boost::asio::io_context& io, std::string_view thread_name,
                 const std::function<void()>& on_exception) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("{} thread: a handler threw ({}); the thread goes on", thread_name, e.what());
    } catch (...) {
      spdlog::error("{} thread: a handler threw a non-standard exception; the thread goes on",
                    thread_name);
    }
    if (on_exception) on_exception();
  }
}

}  // namespace edgehub::net
