#include "guardwatch/http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <crypt.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "guardwatch/log.hpp"

namespace gw {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kMaxRequestBytes = 16 * 1024;  // read-only endpoints: small requests only

struct Auth {
  std::map<std::string, std::string> users;
  std::vector<std::string> open_paths;
  std::mutex mu;
  std::map<std::string, bool> verified;  // Authorization header -> result (hashing is slow on purpose)
  bool check(const std::string& header) {
    {
      std::lock_guard g(mu);
      if (auto it = verified.find(header); it != verified.end()) return it->second;
    }
    bool ok = false;
    if (header.rfind("Basic ", 0) == 0) {
      std::string enc = header.substr(6), dec(beast::detail::base64::decoded_size(enc.size()), '\0');
      auto r = beast::detail::base64::decode(dec.data(), enc.data(), enc.size());
      dec.resize(r.first);
      auto colon = dec.find(':');
      if (colon != std::string::npos) {
        auto it = users.find(dec.substr(0, colon));
        if (it != users.end()) {
          crypt_data data{};
          const char* h = crypt_r(dec.substr(colon + 1).c_str(), it->second.c_str(), &data);
          ok = h && it->second == h;
        }
      }
    }
    std::lock_guard g(mu);
    if (verified.size() > 1000) verified.clear();
    verified[header] = ok;
    return ok;
  }
};

// A connection: plain TCP (Stream = beast::tcp_stream) or TLS (beast::ssl_stream over it).
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  template <class... Ctx>
  Session(tcp::socket s, std::shared_ptr<const std::map<std::string, HttpHandler>> routes, std::shared_ptr<Auth> auth,
          std::shared_ptr<std::atomic<uint32_t>> active, Ctx&... ctx)
      : stream_(std::move(s), ctx...), routes_(std::move(routes)), auth_(std::move(auth)), active_(std::move(active)) {}
  ~Session() { --*active_; }
  void start() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) {
          log::sampled("http_tls", 1, log::Level::kWarn, "http: TLS handshake failed: " + ec.message());
          return;
        }
        self->read();
      });
    } else {
      read();
    }
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestBytes);
    parser_->body_limit(kMaxRequestBytes);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buf_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }
  void on_read(beast::error_code ec) {
    if (ec) return close();
    auto req = parser_->release();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->set(http::field::server, "guardwatch");
    res->keep_alive(req.keep_alive());
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    bool open = !auth_ || auth_->users.empty() ||
                std::find(auth_->open_paths.begin(), auth_->open_paths.end(), path) != auth_->open_paths.end();
    if (!open && !auth_->check(std::string(req[http::field::authorization]))) {
      res->result(http::status::unauthorized);
      res->set(http::field::www_authenticate, "Basic realm=\"guardwatch\"");
      res->body() = "unauthorized\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::allow, "GET, HEAD");
      res->body() = "method not allowed\n";
    } else if (auto it = routes_->find(path); it == routes_->end()) {
      res->result(http::status::not_found);
      res->body() = "not found\n";
    } else {
      HttpResponse r;
      try {
        r = it->second(target);
      } catch (const std::exception& e) {
        r = {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
      }
      res->result(unsigned(r.status));
      res->set(http::field::content_type, r.content_type);
      if (req.method() != http::verb::head) res->body() = std::move(r.body);
    }
    res->prepare_payload();
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec2, size_t) {
      if (ec2 || !res->keep_alive()) return self->close();
      self->read();
    });
  }
  void close() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }
  Stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<const std::map<std::string, HttpHandler>> routes_;
  std::shared_ptr<Auth> auth_;
  std::shared_ptr<std::atomic<uint32_t>> active_;
};
}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  asio::io_context& io;
  tcp::acceptor acceptor;
  std::shared_ptr<std::map<std::string, HttpHandler>> routes = std::make_shared<std::map<std::string, HttpHandler>>();
  std::shared_ptr<Auth> auth = std::make_shared<Auth>();
  std::shared_ptr<std::atomic<uint32_t>> active = std::make_shared<std::atomic<uint32_t>>(0);
  uint32_t max_connections = 64;
  std::atomic<uint64_t> rejected{0};
  std::unique_ptr<asio::ssl::context> tls;
  Impl(asio::io_context& i) : io(i), acceptor(i) {}
  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (self->active->load() >= self->max_connections) {
          ++self->rejected;  // over the limit: closed at once
          beast::error_code ignored;
          s.close(ignored);
        } else {
          ++*self->active;
          if (self->tls)
            std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(s), self->routes, self->auth, self->active, *self->tls)
                ->start();
          else
            std::make_shared<Session<beast::tcp_stream>>(std::move(s), self->routes, self->auth, self->active)->start();
        }
      }
      if (self->acceptor.is_open()) self->accept();
    });
  }
};

HttpServer::HttpServer(asio::io_context& io, const std::string& listen) : impl_(std::make_shared<Impl>(io)) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("listen address \"" + listen + "\" is not host:port");
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  tcp::resolver resolver(io);
  beast::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty()) throw std::runtime_error("cannot resolve listen address \"" + listen + "\": " + ec.message());
  tcp::endpoint ep = results.begin()->endpoint();
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + listen + ": " + ec.message());
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& path, HttpHandler h) { (*impl_->routes)[path] = std::move(h); }
void HttpServer::start() { impl_->accept(); }
void HttpServer::require_auth(std::map<std::string, std::string> users, std::vector<std::string> open_paths) {
  impl_->auth->users = std::move(users);
  impl_->auth->open_paths = std::move(open_paths);
}
void HttpServer::enable_tls(const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  beast::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                       asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) throw std::runtime_error("web.tls.cert_file " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error("web.tls.key_file " + key_file + ": " + ec.message());
  if (!client_ca_file.empty()) {
    ctx->load_verify_file(client_ca_file, ec);
    if (ec) throw std::runtime_error("web.tls.client_ca_file " + client_ca_file + ": " + ec.message());
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }
  impl_->tls = std::move(ctx);
}
bool HttpServer::tls() const { return impl_->tls != nullptr; }

void HttpServer::max_connections(uint32_t n) { impl_->max_connections = n; }
uint64_t HttpServer::rejected_connections() const { return impl_->rejected.load(); }
void HttpServer::stop() {
  beast::error_code ec;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ec);
}
uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }
std::string HttpServer::address() const {
  auto ep = impl_->acceptor.local_endpoint();
  auto addr = ep.address().to_string();
  if (ep.address().is_v6()) addr = "[" + addr + "]";
  return addr + ":" + std::to_string(ep.port());
}

}  // namespace gw
