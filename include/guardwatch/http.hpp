// One HTTP server on a Boost.Asio io_context (Boost.Beast): /metrics, /healthz, /readyz, /api.
#pragma once
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gw {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const std::string& target)>;

class HttpServer {
 public:
  // `listen` is "host:port" (port 0 picks a free port). Throws on bind errors.
  HttpServer(boost::asio::io_context& io, const std::string& listen);
  ~HttpServer();
  void route(const std::string& path, HttpHandler h);  // exact path, GET and HEAD
  // Basic auth for every path but `open_paths` (user -> crypt(3) hash); empty: no auth.
  void require_auth(std::map<std::string, std::string> users, std::vector<std::string> open_paths);
  void max_connections(uint32_t n);
  // Serve HTTPS only (TLS 1.2+); with `client_ca_file`, clients must present a certificate it
  // signed. Throws naming the file that cannot be used.
  void enable_tls(const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file = "");
  bool tls() const;
  uint64_t rejected_connections() const;
  void start();
  void stop();
  uint16_t port() const;
  std::string address() const;  // host:port actually bound

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gw
