#pragma once
// The last resort around an io_context's run(): an exception out of a handler is logged and
// counted, and the thread goes on running the io_context (Asio allows run() again without
// restart()). Handlers are written not to throw; this only keeps one missed case from
// ending the process.

#include <boost/asio/io_context.hpp>
#include <functional>
#include <string_view>

namespace edgehub::net {

// Runs `io` until it stops; `on_exception` (may be null) is called once per exception caught.
void run_guarded(boost::asio::io_context& io, std::string_view thread_name,
                 const std::function<void()>& on_exception = nullptr);

}  // namespace edgehub::net
