#pragma once
// Process-wide logging on spdlog's default logger, to standard error: `text` for people,
// `json` (one object per line: time, level, thread, msg) for log collectors.

#include <cstddef>
#include <memory>
#include <spdlog/sinks/sink.h>
#include <string>
#include <string_view>

namespace edgehub::logging {

// Sets the default logger's level and format. `level`: trace, debug, info, warn, error;
// `format`: text, json (the config module has validated both). `sink` replaces standard
// error, for tests.
void setup(std::string_view level, std::string_view format,
           std::shared_ptr<spdlog::sinks::sink> sink = nullptr);

// A string an edge chose, fit for a log line: at most `max_bytes` of it, bytes outside
// printable ASCII (and backslashes) written as \xNN, and a note of the length left out.
std::string field(std::string_view text, std::size_t max_bytes = 128);

}  // namespace edgehub::logging
