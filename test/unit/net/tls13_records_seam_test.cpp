// Tls13Records' reader and writer against records sealed through the test seam
// (tls13_records_seam.hpp), over a socket pair: what a well-behaved OpenSSL peer never sends
// (empty alerts, user_canceled, padding), and the two ends' KeyUpdates.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <edgehub/net/tls13_records_seam.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <string>
#include <vector>

namespace edgehub::net {
namespace {

using detail::Step;
using End = Tls13RecordsSeam::End;

constexpr std::uint8_t kAlert = 21, kHandshake = 22, kApplicationData = 23;

std::vector<unsigned char> secret(std::size_t size, unsigned char seed) {
  std::vector<unsigned char> s(size);
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<unsigned char>(seed + 7 * i);
  return s;
}

// A server end and its client, connected by a socket pair, for one cipher suite.
class Tls13RecordsSeamTest : public ::testing::TestWithParam<std::uint16_t> {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    const std::size_t length = GetParam() == 0x1302 ? 48 : 32;
    const auto client_secret = secret(length, 1), server_secret = secret(length, 2);
    server = Tls13RecordsSeam::from_secrets(GetParam(), End::server, client_secret, server_secret);
    client = Tls13RecordsSeam::from_secrets(GetParam(), End::client, client_secret, server_secret);
    ASSERT_TRUE(server && client);
  }
  void TearDown() override {
    ::close(fds[0]);
    ::close(fds[1]);
  }

  // The client sends a record the seam sealed.
  void client_sends(std::uint8_t type, const std::string& content, std::size_t padding = 0) {
    const auto record = Tls13RecordsSeam::seal(
        *client, type, reinterpret_cast<const unsigned char*>(content.data()), content.size(),
        padding);
    ASSERT_FALSE(record.empty());
    ASSERT_EQ(::write(fds[1], record.data(), record.size()),
              static_cast<ssize_t>(record.size()));
  }

  // Everything the server's reads give until they stop; `ec`: how they stopped.
  std::string server_reads(error_code& ec) {
    std::string got;
    char buf[4096];
    for (;;) {
      std::size_t n = 0;
      const Step step = server->read(fds[0], buf, sizeof buf, n, ec);
      if (step != Step::done) return got;
      got.append(buf, n);
    }
  }

  std::string client_reads(error_code& ec) {
    std::string got;
    char buf[4096];
    for (;;) {
      std::size_t n = 0;
      if (client->read(fds[1], buf, sizeof buf, n, ec) != Step::done) return got;
      got.append(buf, n);
    }
  }

  int fds[2] = {-1, -1};
  std::unique_ptr<Tls13Records> server, client;
};

INSTANTIATE_TEST_SUITE_P(Suites, Tls13RecordsSeamTest, ::testing::Values(0x1301, 0x1302, 0x1303));

TEST_P(Tls13RecordsSeamTest, PaddedRecordsAreOpened) {
  client_sends(kApplicationData, "hello", 1000);
  client_sends(kApplicationData, " world", 0);
  client_sends(kApplicationData, "", 16);  // empty, padded: allowed
  error_code ec;
  EXPECT_EQ(server_reads(ec), "hello world");
  EXPECT_FALSE(ec) << ec.message();  // want_read: nothing more yet
}

// The reader takes what the socket holds in one read: several records at once, a record in
// pieces, and a record whose header came with the previous one, all opened in order.
TEST_P(Tls13RecordsSeamTest, RecordsTogetherOrInPiecesAreOpenedInOrder) {
  auto seal = [&](const std::string& content) {
    return Tls13RecordsSeam::seal(*client, kApplicationData,
                                  reinterpret_cast<const unsigned char*>(content.data()),
                                  content.size());
  };
  const auto one = seal("one "), two = seal("two "), three = seal(std::string(5000, 'x'));
  const auto four = seal(" four");
  std::vector<unsigned char> wire(one);
  wire.insert(wire.end(), two.begin(), two.end());
  wire.insert(wire.end(), three.begin(), three.begin() + 3);  // part of three's header
  ASSERT_EQ(::write(fds[1], wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  error_code ec;
  EXPECT_EQ(server_reads(ec), "one two ");
  EXPECT_FALSE(ec) << ec.message();
  // The rest of three, in two pieces with a read between, and four in the same write as
  // three's last bytes.
  const std::size_t half = three.size() / 2;
  ASSERT_EQ(::write(fds[1], three.data() + 3, half - 3), static_cast<ssize_t>(half - 3));
  EXPECT_EQ(server_reads(ec), "");
  EXPECT_FALSE(ec) << ec.message();
  wire.assign(three.begin() + static_cast<std::ptrdiff_t>(half), three.end());
  wire.insert(wire.end(), four.begin(), four.end());
  ASSERT_EQ(::write(fds[1], wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  EXPECT_EQ(server_reads(ec), std::string(5000, 'x') + " four");
  EXPECT_FALSE(ec) << ec.message();
}

TEST_P(Tls13RecordsSeamTest, AnEmptyAlertIsUnexpectedMessage) {
  client_sends(kAlert, "");
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
  // The peer is told: a fatal unexpected_message alert (10) is what the client reads.
  error_code alert;
  client_reads(alert);
  EXPECT_NE(alert.message().find("alert 10"), std::string::npos) << alert.message();
}

TEST_P(Tls13RecordsSeamTest, AnAlertRecordHoldsOneAlert) {
  client_sends(kAlert, std::string("\x01\x00\x01\x00", 4));
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("decode_error"), std::string::npos) << ec.message();
}

// user_canceled is a closure alert (RFC 8446 §6.1): the connection ends with the
// close_notify after it, data before both delivered.
TEST_P(Tls13RecordsSeamTest, UserCanceledIsAClosureAlert) {
  client_sends(kApplicationData, "last words");
  client_sends(kAlert, std::string("\x01\x5a", 2));  // warning, user_canceled
  error_code ec;
  EXPECT_EQ(server_reads(ec), "last words");
  EXPECT_FALSE(ec) << ec.message();
  client_sends(kAlert, std::string("\x01\x00", 2));  // close_notify
  server_reads(ec);
  EXPECT_EQ(ec, boost::asio::error::eof) << ec.message();
}

TEST_P(Tls13RecordsSeamTest, UserCanceledAlertsWithoutEndAreCutOff) {
  for (int i = 0; i < 40; ++i) client_sends(kAlert, std::string("\x01\x5a", 2));
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
}

TEST_P(Tls13RecordsSeamTest, OtherAlertsEndTheConnection) {
  client_sends(kAlert, std::string("\x02\x28", 2));  // fatal handshake_failure
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("alert 40"), std::string::npos) << ec.message();
}

TEST_P(Tls13RecordsSeamTest, OnlyPaddingIsUnexpectedMessage) {
  client_sends(0, "", 30);  // no content type at all
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
}

// The client's KeyUpdate asks for ours: the server's next record is its KeyUpdate, and the
// data after it is under the new key; the client's own data too.
TEST_P(Tls13RecordsSeamTest, FollowsAndAnswersTheClientsKeyUpdate) {
  client_sends(kHandshake, std::string("\x18\x00\x00\x01\x01", 5));  // update_requested
  ASSERT_TRUE(Tls13RecordsSeam::update_write_key(*client));
  client_sends(kApplicationData, "after");
  error_code ec;
  EXPECT_EQ(server_reads(ec), "after");
  std::size_t n = 0;
  ASSERT_EQ(server->write(fds[0], "answer", 6, n, ec), Step::done) << ec.message();
  EXPECT_EQ(client_reads(ec), "answer");  // the client follows the server's KeyUpdate
  EXPECT_FALSE(ec) << ec.message();
}

TEST_P(Tls13RecordsSeamTest, AKeyUpdateMustEndItsRecord) {
  client_sends(kHandshake, std::string("\x18\x00\x00\x01\x00" "extra", 10));
  error_code ec;
  server_reads(ec);
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
}

// With the threshold lowered through the seam, the server moves its write key on by itself
// after every 3 records; its peer keeps reading across the updates.
TEST_P(Tls13RecordsSeamTest, SendsItsOwnKeyUpdates) {
  const auto previous = Tls13RecordsSeam::set_rekey_after(3);
  error_code ec;
  auto server3 = Tls13RecordsSeam::from_secrets(GetParam(), End::server,
                                                secret(GetParam() == 0x1302 ? 48 : 32, 1),
                                                secret(GetParam() == 0x1302 ? 48 : 32, 2));
  Tls13RecordsSeam::set_rekey_after(previous);
  ASSERT_TRUE(server3);
  std::string sent;
  for (int i = 0; i < 20; ++i) {
    const std::string message = "message " + std::to_string(i) + ";";
    std::size_t n = 0;
    ASSERT_EQ(server3->write(fds[0], message.data(), message.size(), n, ec), Step::done);
    sent += message;
  }
  EXPECT_EQ(client_reads(ec), sent);
  EXPECT_FALSE(ec) << ec.message();
}

}  // namespace
}  // namespace edgehub::net
