// One HTTP server on a Boost.Asio io_context (Boost.Beast): /metrics, /healthz, /readyz, /api.
#pragma once
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

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
  void start();
  void stop();
  uint16_t port() const;
  std::string address() const;  // host:port actually bound

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gw
