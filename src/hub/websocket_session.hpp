#pragma once
// The Session over a Beast WebSocket stream; Stream is net::TlsStream (edge port) or
// beast::tcp_stream (behind a TLS-terminating proxy).

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <list>
#include <edgehub/hub/session.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::hub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;

inline net::TlsStream::socket_type& raw_socket(net::TlsStream& s) { return s.socket(); }
inline asio::ip::tcp::socket& raw_socket(beast::tcp_stream& s) { return s.socket(); }

websocket::close_code close_code_for(CloseReason reason);

template <class Stream>
class WebSocketSession final : public Session {
 public:
  // `options` and `host` outlive the session (the listener's).
  WebSocketSession(Stream stream, std::string node, std::string peer, std::uint64_t id,
                   const SessionOptions& options, SessionHost& host)
      : Session(std::move(node), std::move(peer), id),
        ws_(std::move(stream)),
        options_(options),
        host_(host),
        timer_(ws_.get_executor()) {
    m_ = options_.metrics.get();
    delivery_ = std::make_unique<Delivery>(
        options.delivery,
        [this](const std::string& frame, SteadyClock::time_point received) {
          send(frame, received);
        },
        [this](const Change& change, SteadyClock::duration latency) {
          host_.on_delivered(*this, change, latency);
        },
        [] { return SteadyClock::now(); });
  }

  // Completes the WebSocket upgrade for `request`, then runs.
  void accept(beast::http::request<beast::http::string_body> request) {
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.set_option(websocket::stream_base::decorator([this](websocket::response_type& res) {
      res.erase(beast::http::field::server);
      if (!options_.replica_id.empty()) res.set("X-Edgehub-Replica", options_.replica_id);
    }));
    ws_.async_accept(request, [self = shared_self()](error_code ec) {
      if (ec) {
        spdlog::info("node {} ({}): WebSocket upgrade failed: {}", self->node_, self->peer_,
                     ec.message());
        // Reported like any other end, so the connection count and metrics stay right.
        return self->finish(CloseReason::peer_closed);
      }
      self->ws_.text(true);
      self->arm_keepalive();
      self->host_.on_open(self);
      if (!self->closing_) self->read();
    });
  }

  asio::any_io_executor executor() override { return ws_.get_executor(); }

  using Session::send;
  void send(std::string frame, SteadyClock::time_point received) override {
    if (closing_ || closed_) return;
    queued_bytes_ += frame.size();
    if (queued_bytes_ > options_.write_queue_bytes) {
      spdlog::warn("node {} ({}): disconnecting a slow reader: {} bytes queued (cap {})", node_,
                   peer_, queued_bytes_, options_.write_queue_bytes);
      return close(CloseReason::slow_reader);
    }
    queue_.push_back(Outgoing{std::move(frame), received});
    if (!writing_) write();
  }

  void enqueue(Change change) override {
    if (closing_ || closed_) return;
    delivery_->enqueue(std::move(change));
    report_queue();
    arm_delivery_timer();
  }

  void close(CloseReason reason) override {
    if (closing_ || closed_) return;
    closing_ = true;
    reason_ = reason;
    drop_queue();
    // A reader that does not read will not take a close frame either: drop the connection.
    if (reason == CloseReason::slow_reader) return finish(reason);
    if (!writing_) return start_close();
    // A write in progress finishes first (Beast allows no close during a write), but never
    // holds the session longer than the close timeout.
    arm_close_timeout();
  }

  bool closed() const override { return closed_ || closing_; }

 private:
  std::shared_ptr<WebSocketSession> shared_self() {
    return std::static_pointer_cast<WebSocketSession>(shared_from_this());
  }

  // Waiting for a message holds no buffer: the first byte goes into the session itself, the
  // rest of the message into buffer_. (Beast's async_read would prepare its whole read size
  // hint, ≥ 1.5 KiB, in buffer_ before any byte arrives — for every idle edge.)
  void read() {
    ws_.async_read_some(asio::buffer(&first_byte_, 1),
                        [self = shared_self()](error_code ec, std::size_t n) {
                          self->on_first_byte(ec, n);
                        });
  }

  void on_first_byte(error_code ec, std::size_t n) {
    if (ec) return on_read(ec, 0);
    if (n == 1) {
      const auto room = buffer_.prepare(1);
      *static_cast<char*>(room.data()) = first_byte_;
      buffer_.commit(1);
    }
    read_rest();
  }

  void read_rest() {
    if (ws_.is_message_done()) return on_read({}, buffer_.size());
    ws_.async_read_some(buffer_, 0, [self = shared_self()](error_code ec, std::size_t) {
      if (ec) return self->on_read(ec, 0);
      self->read_rest();
    });
  }

  void on_read(error_code ec, std::size_t n) {
    if (ec) {
      if (closing_) return finish(reason_);
      if (ec == websocket::error::message_too_big) {
        spdlog::warn("node {} ({}): message over {} bytes, closing", node_, peer_,
                     options_.max_message_bytes);
        return finish(CloseReason::bad_message);
      }
      spdlog::debug("node {} ({}): connection ended: {}", node_, peer_, ec.message());
      return finish(CloseReason::peer_closed);
    }
    counters_.messages_in += 1;
    counters_.bytes_in += n;
    if (m_) count(m_->messages_in), count(m_->bytes_in, n);
    const auto data = buffer_.cdata();  // a flat_buffer's data is one contiguous run
    handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.consume(buffer_.size());
    // An idle edge sends a keepalive every 15 s: holding its read buffer between messages
    // would cost kilobytes per connection for nothing.
    buffer_.shrink_to_fit();
    if (closing_ || closed_) return;
    if (requests_in_flight_ >= options_.max_requests_in_flight) return pause_reading();
    read();
  }

  // Backpressure: an edge with hub.maxRequestsInFlightPerNode requests unanswered is not read
  // until one is answered; TCP then holds its further messages back. Its keepalives wait in
  // the socket too, so the keepalive deadline does not run while we hold the read: the pause is
  // our doing, not the edge's silence. It starts afresh on resuming.
  void pause_reading() {
    read_paused_ = true;
    keepalive_deadline_ = SteadyClock::time_point::max();
  }

  void request_done() override {
    if (requests_in_flight_ > 0) --requests_in_flight_;
    if (!read_paused_ || closing_ || closed_) return;
    if (requests_in_flight_ >= options_.max_requests_in_flight) return;
    read_paused_ = false;
    arm_keepalive();
    read();
  }

  void handle(std::string_view payload) {
    auto decoded = wire::decode(payload, {.max_bytes = options_.max_message_bytes});
    if (!decoded) {
      if (m_) count(m_->bad_messages);
      spdlog::warn("node {} ({}): undecodable message ({}), closing as the protocol demands: {}",
                   node_, peer_, wire::to_string(decoded.error().code), decoded.error().message);
      return close(CloseReason::bad_message);
    }
    wire::Message& m = *decoded;
    const auto& op = m.route.operation;
    if (op == "keepalive") {
      counters_.keepalives += 1;
      if (m_) count(m_->keepalives);
      return arm_keepalive();
    }
    if (op == "response") {
      if (delivery_->on_ack(m.header.parent_msg_id)) {
        counters_.acks += 1;
        if (m_) count(m_->acks);
        report_queue();
        arm_delivery_timer();
      } else {
        counters_.unmatched_acks += 1;  // e.g. the edge ACKing our replies to its requests
      }
      return;
    }
    if (op.empty() && m.route.resource.empty() && m.header.msg_id.empty()) {
      counters_.empty_messages += 1;  // edgecore's goodbye on SIGTERM (KUBEEDGE-WIRE §10.6)
      if (m_) count(m_->empty_messages);
      spdlog::debug("node {} ({}): empty message (edgecore shutting down)", node_, peer_);
      return;
    }
    ++requests_in_flight_;
    host_.on_request(shared_from_this(), std::move(m));
  }

  void write() {
    writing_ = true;
    ws_.async_write(asio::buffer(queue_.front().frame), [self = shared_self()](error_code ec,
                                                                        std::size_t n) {
      self->on_write(ec, n);
    });
  }

  void on_write(error_code ec, std::size_t n) {
    writing_ = false;
    if (ec) {
      drop_queue();
      if (closing_) return finish(reason_);
      spdlog::debug("node {} ({}): write failed: {}", node_, peer_, ec.message());
      return finish(CloseReason::write_failed);
    }
    counters_.messages_out += 1;
    counters_.bytes_out += n;
    if (m_) count(m_->messages_out), count(m_->bytes_out, n);
    const auto received = queue_.front().received;
    if (m_ && m_->internal_latency && received != SteadyClock::time_point{}) {
      m_->internal_latency->observe(
          std::chrono::duration<double>(SteadyClock::now() - received).count());
    }
    queued_bytes_ -= queue_.front().frame.size();
    queue_.pop_front();
    if (closing_) return start_close();
    if (!queue_.empty()) write();
  }

  void start_close() {
    ws_.async_close(close_code_for(reason_),
                    [self = shared_self()](error_code) { self->finish(self->reason_); });
    arm_close_timeout();
  }

  // A peer that never answers the close handshake must not keep the session.
  void arm_close_timeout() {
    close_deadline_ = SteadyClock::now() + std::chrono::seconds(5);
    arm_timer();
  }

  // The session is over: release the socket and tell the host, once.
  void finish(CloseReason reason) {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    timer_armed_ = false;
    error_code ignored;
    raw_socket(ws_.next_layer()).shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    raw_socket(ws_.next_layer()).close(ignored);
    drop_queue();
    if (m_ && m_->queued) m_->queued->add(-reported_queue_);
    reported_queue_ = 0;
    host_.on_closed(*this, reason);
  }

  // Drops queued frames, except one a write in progress still reads from.
  void drop_queue() {
    while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
    queued_bytes_ = queue_.empty() ? 0 : queue_.front().frame.size();
  }

  // A keepalive only moves the deadline; the timer, armed for an earlier one, re-arms itself
  // when it fires.
  void arm_keepalive() {
    keepalive_deadline_ = SteadyClock::now() + options_.keepalive_timeout;
    arm_timer();
  }

  void arm_delivery_timer() {
    const auto next = delivery_->next_deadline();
    if (!next) return;
    if (delivery_armed_ && delivery_deadline_ <= *next) return;
    delivery_armed_ = true;
    delivery_deadline_ = *next;
    arm_timer();
  }

  // One timer serves the keepalive deadline, the delivery retries and, once closing, the
  // close timeout: it waits for the earliest of those that apply.
  SteadyClock::time_point next_deadline() const {
    if (closing_) return close_deadline_;
    auto next = keepalive_deadline_;
    if (delivery_armed_ && delivery_deadline_ < next) next = delivery_deadline_;
    return next;
  }

  void arm_timer() {
    if (closed_) return;
    const auto next = next_deadline();
    if (timer_armed_ && timer_at_ <= next) return;
    timer_armed_ = true;
    timer_at_ = next;
    timer_.expires_at(next);
    timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) static_cast<WebSocketSession*>(self.get())->on_timer();
    });
  }

  void on_timer() {
    timer_armed_ = false;
    if (closed_) return;
    const auto now = SteadyClock::now();
    if (closing_) {
      if (now >= close_deadline_) return finish(reason_);
      return arm_timer();
    }
    if (now >= keepalive_deadline_) {
      spdlog::info("node {} ({}): no keepalive for {} ms, closing", node_, peer_,
                   options_.keepalive_timeout.count());
      return close(CloseReason::keepalive_timeout);
    }
    if (delivery_armed_ && now >= delivery_deadline_) {
      delivery_armed_ = false;
      const auto before = delivery_->stats().retried;
      delivery_->on_timer();
      if (m_) count(m_->retries, delivery_->stats().retried - before);
      arm_delivery_timer();
    }
    arm_timer();
  }

  static void count(metrics::Counter* c, std::uint64_t n = 1) {
    if (c != nullptr) c->inc(n);
  }
  // Keeps the replica-wide queue gauge in step with this session's delivery.
  void report_queue() {
    const auto now = static_cast<double>(delivery_->queued() + delivery_->in_flight());
    if (m_ != nullptr && m_->queued != nullptr && now != reported_queue_) {
      m_->queued->add(now - reported_queue_);
    }
    reported_queue_ = now;
  }

  websocket::stream<Stream> ws_;
  const SessionOptions& options_;
  const SessionMetrics* m_ = nullptr;
  double reported_queue_ = 0;
  SessionHost& host_;
  beast::flat_buffer buffer_;
  char first_byte_ = 0;
  struct Outgoing {
    std::string frame;
    SteadyClock::time_point received;  // the watch event's time, unset for other frames
  };
  // A list: an idle session's empty queue allocates nothing (a std::deque holds ~600 bytes).
  std::list<Outgoing> queue_;
  // The stream's executor type: io_context's own for TLS (see net::TlsStream).
  asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>,
                             typename websocket::stream<Stream>::executor_type>
      timer_;
  SteadyClock::time_point timer_at_{};  // what timer_ waits for, while timer_armed_
  SteadyClock::time_point keepalive_deadline_ = SteadyClock::time_point::max();
  SteadyClock::time_point delivery_deadline_{};
  SteadyClock::time_point close_deadline_{};
  bool timer_armed_ = false;
  bool delivery_armed_ = false;
  bool writing_ = false;
  bool read_paused_ = false;
  bool closing_ = false;
  bool closed_ = false;
  CloseReason reason_ = CloseReason::peer_closed;
};

}  // namespace edgehub::hub
