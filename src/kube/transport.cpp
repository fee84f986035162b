#include "transport.hpp"

#include <edgehub/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include <array>

namespace edgehub::kube {

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
using tcp = net::ip::tcp;

// The typed error for an exception thrown out of an exchange (called inside a catch).
Error current_exception_error() {
  try {
    throw;
  } catch (const boost::system::system_error& e) {
    return make_error(e.code() == net::error::operation_aborted ? ErrorKind::Cancelled
                                                                : ErrorKind::StreamBroken,
                      e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorKind::Internal, e.what());
  } catch (...) {
    return make_error(ErrorKind::Internal, "unknown exception");
  }
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out;
}

Error io_error(const boost::system::error_code& ec, std::string_view what, ErrorKind otherwise) {
  ErrorKind kind = otherwise;
  if (ec == beast::error::timeout) {
    kind = ErrorKind::TransportTimeout;
  } else if (ec == net::error::operation_aborted) {
    kind = ErrorKind::Cancelled;
  } else if (ec.category() == boost::system::error_code(http::error::end_of_stream).category() &&
             ec != http::error::end_of_stream && ec != http::error::partial_message) {
    kind = ErrorKind::Protocol;
  }
  return make_error(kind, std::string(what) + ": " + ec.message());
}

}  // namespace

Result<std::unique_ptr<Client::Impl>> make_impl(net::any_io_executor ex, ClientConfig cfg,
                                                ClientOptions opt) {
  if (cfg.host.empty() || cfg.port.empty()) {
    if (auto r = cfg.set_server(cfg.server, "server"); !r) return r.error();
  }
  auto impl = std::make_unique<Client::Impl>(std::move(ex), std::move(cfg), opt);
  const ClientConfig& c = impl->config;
  if (c.scheme != "https") return impl;

  auto fail = [&](std::string what) {
    return make_error(ErrorKind::Config, c.origin + ": " + what + ": " + openssl_errors());
  };
  impl->tls_context.emplace(net::ssl::context::tls_client);
  auto& ctx = *impl->tls_context;
  boost::system::error_code ec;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  if (c.insecure_skip_tls_verify) {
    ctx.set_verify_mode(net::ssl::verify_none);
  } else {
    ctx.set_verify_mode(net::ssl::verify_peer);
    if (c.ca_pem.empty()) {
      if (ctx.set_default_verify_paths(ec); ec) return fail("system CA certificates");
    } else if (ctx.add_certificate_authority(net::buffer(c.ca_pem), ec); ec) {
      return fail("certificate-authority is not a PEM certificate");
    }
  }
  if (!c.client_cert_pem.empty()) {
    if (ctx.use_certificate_chain(net::buffer(c.client_cert_pem), ec); ec) {
      return fail("client-certificate is not a PEM certificate");
    }
    if (ctx.use_private_key(net::buffer(c.client_key_pem), net::ssl::context::pem, ec); ec) {
      return fail("client-key is not a PEM private key");
    }
  }
  return impl;
}

Client::Impl::Impl(net::any_io_executor ex, ClientConfig cfg, ClientOptions opt)
    : executor(ex), config(std::move(cfg)), options(opt),
      limiter(opt.qps, opt.burst, opt.clock ? opt.clock : RateLimiter::Now(&RateLimiter::Clock::now)),
      poll_timer_(ex) {
  bool v6 = config.host.find(':') != std::string::npos;
  host_header_ = v6 ? "[" + config.host + "]" : config.host;
  bool default_port = (config.scheme == "https" && config.port == "443") ||
                      (config.scheme == "http" && config.port == "80");
  if (!default_port) host_header_ += ":" + config.port;
}

Request Client::Impl::make_request(http::verb verb, std::string target, std::string body,
                                   std::string_view content_type) const {
  Request req(verb, target, 11);
  req.set(http::field::host, host_header_);
  req.set(http::field::user_agent, std::string("edgehub/") + edgehub::kVersion);
  req.set(http::field::accept, "application/json");
  std::string token = config.token.current();
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  req.keep_alive(true);
  req.body() = std::move(body);
  if (verb != http::verb::get || !req.body().empty()) req.prepare_payload();
  return req;
}

void Client::Impl::schedule_poll() {
  auto wait = limiter.poll();
  if (!wait) return;
  poll_timer_.expires_after(*wait);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) schedule_poll();
  });
}

net::awaitable<Result<void>> Client::Impl::acquire(Priority priority) {
  if (limiter.try_acquire(priority)) co_return Result<void>{};
  auto timer = std::make_shared<net::steady_timer>(executor, net::steady_timer::time_point::max());
  auto granted = std::make_shared<bool>(false);
  limiter.enqueue(priority, [timer, granted] {
    *granted = true;
    timer->cancel();
  });
  schedule_poll();
  // poll() grants synchronously when a token came back since try_acquire (the bucket refills
  // with the clock): the grant's cancel() then found no wait to cancel, and waiting on the
  // timer now would wait forever (a request lost, and with it a claim or a delivery).
  if (!*granted) co_await timer->async_wait(use_tuple);
  if (!*granted) co_return make_error(ErrorKind::Cancelled, "cancelled while rate limited");
  co_return Result<void>{};
}

net::awaitable<Result<std::unique_ptr<Connection>>> Client::Impl::connect() {
  const std::string where = config.host + ":" + config.port;
  tcp::resolver resolver(executor);
  auto [rec, endpoints] = co_await resolver.async_resolve(config.host, config.port, use_tuple);
  if (rec) co_return io_error(rec, "resolve " + where, ErrorKind::ConnectFailed);

  auto conn = std::make_unique<Connection>();
  if (tls_context) {
    conn->tls.emplace(executor, *tls_context);
  } else {
    conn->plain.emplace(executor);
  }
  auto& low = conn->lowest();
  low.expires_after(options.connect_timeout);
  auto [cec, ep] = co_await low.async_connect(endpoints, use_tuple);
  if (cec) co_return io_error(cec, "connect to " + where, ErrorKind::ConnectFailed);
  ++opened;
  if (conn->tls) {
    const std::string& name = config.tls_server_name.empty() ? config.host : config.tls_server_name;
    if (!is_ip_literal(name)) SSL_set_tlsext_host_name(conn->tls->native_handle(), name.c_str());
    if (!config.insecure_skip_tls_verify) {
      conn->tls->set_verify_callback(net::ssl::host_name_verification(name));
    }
    auto [hec] = co_await conn->tls->async_handshake(net::ssl::stream_base::client, use_tuple);
    if (hec) {
      if (hec == beast::error::timeout) {
        co_return io_error(hec, "TLS handshake with " + where, ErrorKind::TlsFailure);
      }
      co_return make_error(ErrorKind::TlsFailure, "TLS handshake with " + where + ": " +
                                                      hec.message());
    }
  }
  co_return conn;
}

void Client::Impl::release(std::unique_ptr<Connection> conn) {
  if (idle.size() >= options.max_idle_connections) return;
  conn->reused = true;
  conn->lowest().expires_never();
  idle.push_back(std::move(conn));
}

template <class Stream>
net::awaitable<Result<Response>> Client::Impl::round_trip(Stream& s, Connection& c, Request& req,
                                                          bool& retryable, bool& keep_alive) {
  const std::string where = config.host + ":" + config.port;
  c.lowest().expires_after(options.request_timeout);
  auto [wec, wn] = co_await http::async_write(s, req, use_tuple);
  if (wec) {
    retryable = c.reused && wec != beast::error::timeout;
    co_return io_error(wec, "send " + std::string(req.method_string()) + " to " + where,
                       ErrorKind::StreamBroken);
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(options.max_body_bytes);
  auto [rec, rn] = co_await http::async_read(s, c.buffer, parser, use_tuple);
  if (rec) {
    retryable = c.reused && !parser.got_some() && rec != beast::error::timeout;
    co_return io_error(rec, "read answer to " + std::string(req.method_string()) + " " +
                                std::string(req.target()) + " from " + where,
                       ErrorKind::StreamBroken);
  }
  auto& res = parser.get();
  keep_alive = res.keep_alive();
  Response out;
  out.status = res.result_int();
  out.content_type = std::string(res[http::field::content_type]);
  out.body = std::move(res.body());
  out.retry_after = std::string(res[http::field::retry_after]);
  co_return out;
}

void Client::Impl::report(std::string_view verb, std::string_view resource, int code,
                          std::string_view error,
                          std::chrono::steady_clock::time_point start) const {
  if (!options.on_request) return;
  RequestRecord record;
  record.verb = verb;
  record.resource = resource;
  record.code = code;
  if (code == 0) record.error = error;
  record.duration = std::chrono::steady_clock::now() - start;
  try {
    options.on_request(record);
  } catch (const std::exception& e) {
    spdlog::error("kube client: the request observer threw: {}", e.what());
  }
}

net::awaitable<Result<Response>> Client::Impl::exchange(Request req, Priority priority,
                                                        std::string_view verb,
                                                        std::string resource) {
  try {
    if (auto r = co_await acquire(priority); !r) co_return r.error();
  } catch (...) {
    co_return current_exception_error();
  }
  const auto start = std::chrono::steady_clock::now();
  auto res = co_await send_with_retry(req);
  report(verb, resource, res ? res->status : 0,
         res ? std::string_view() : to_string(res.error().kind), start);
  co_return res;
}

net::awaitable<Result<Response>> Client::Impl::send_with_retry(Request& req) {
  try {
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> conn;
      if (!idle.empty()) {
        conn = std::move(idle.back());
        idle.pop_back();
      } else {
        auto fresh = co_await connect();
        if (!fresh) co_return fresh.error();
        conn = std::move(*fresh);
      }
      bool retryable = false, keep_alive = false;
      Result<Response> res = make_error(ErrorKind::Internal, "unset");
      if (conn->tls) {
        res = co_await round_trip(*conn->tls, *conn, req, retryable, keep_alive);
      } else {
        res = co_await round_trip(*conn->plain, *conn, req, retryable, keep_alive);
      }
      if (!res) {
        // A kept-alive connection the server closed while idle: one fresh attempt.
        if (retryable && attempt == 0) continue;
        co_return res.error();
      }
      if (keep_alive) release(std::move(conn));
      co_return res;
    }
  } catch (...) {
    co_return current_exception_error();
  }
}

template <class Stream>
net::awaitable<Result<void>> Client::Impl::read_stream(Stream& s, Connection& c,
                                                       std::chrono::milliseconds idle_timeout,
                                                       const WatchDecoder::Sink& sink,
                                                       bool& keep_alive, int& status_out) {
  const std::string where = config.host + ":" + config.port;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  c.lowest().expires_after(options.request_timeout);
  auto [hec, hn] = co_await http::async_read_header(s, c.buffer, parser, use_tuple);
  if (hec) co_return io_error(hec, "read watch answer from " + where, ErrorKind::StreamBroken);

  const int status = parser.get().result_int();
  status_out = status;
  const bool ok = status / 100 == 2;
  std::string error_body;
  std::array<char, 16384> buf;
  WatchDecoder decoder;
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    c.lowest().expires_after(ok ? idle_timeout : options.request_timeout);
    // read_some, not read: read would wait for the buffer to fill, holding events back.
    auto [ec, n] = co_await http::async_read_some(s, c.buffer, parser, use_tuple);
    if (ec == http::error::need_buffer) ec = {};
    std::size_t got = buf.size() - parser.get().body().size;
    if (!ok) {
      if (error_body.size() < options.max_body_bytes) error_body.append(buf.data(), got);
    } else if (got > 0) {
      auto more = decoder.feed(std::string_view(buf.data(), got), sink);
      if (!more) co_return more.error();
      if (!*more) co_return Result<void>{};  // the sink is done; drop the connection
    }
    if (ec) {
      if (!ok) break;
      co_return io_error(ec, "watch stream from " + where + " after " +
                                 std::to_string(decoder.events()) + " events",
                         ErrorKind::StreamBroken);
    }
  }
  if (!ok) co_return error_from_response(status, error_body, parser.get()[http::field::retry_after]);
  if (auto r = decoder.finish(sink); !r) co_return r.error();
  keep_alive = parser.get().keep_alive();
  co_return Result<void>{};
}

net::awaitable<Result<void>> Client::Impl::stream(Request req, Priority priority,
                                                  std::chrono::milliseconds idle_timeout,
                                                  const WatchDecoder::Sink& sink,
                                                  std::string resource) {
  int status = 0;
  std::optional<std::chrono::steady_clock::time_point> start;
  Result<void> r;
  try {
    if (auto a = co_await acquire(priority); !a) co_return a.error();
    start = std::chrono::steady_clock::now();
    // A watch lives for minutes: it gets a fresh connection rather than a pooled one that
    // may have gone stale, and returns it to the pool if it ends cleanly.
    auto fresh = co_await connect();
    if (!fresh) {
      r = fresh.error();
    } else {
      auto conn = std::move(*fresh);
      conn->lowest().expires_after(options.request_timeout);
      boost::system::error_code wec;
      if (conn->tls) {
        std::tie(wec, std::ignore) = co_await http::async_write(*conn->tls, req, use_tuple);
      } else {
        std::tie(wec, std::ignore) = co_await http::async_write(*conn->plain, req, use_tuple);
      }
      if (wec) {
        r = io_error(wec, "send watch request", ErrorKind::StreamBroken);
      } else {
        bool keep_alive = false;
        if (conn->tls) {
          r = co_await read_stream(*conn->tls, *conn, idle_timeout, sink, keep_alive, status);
        } else {
          r = co_await read_stream(*conn->plain, *conn, idle_timeout, sink, keep_alive, status);
        }
        if (r && keep_alive) release(std::move(conn));
      }
    }
  } catch (...) {
    r = current_exception_error();
  }
  if (start)
    report("watch", resource, status, r ? std::string_view() : to_string(r.error().kind), *start);
  co_return r;
}

}  // namespace edgehub::kube
