// A Kafka producer for `guardwatch generate` and the demo: creates the topic when missing and
// keys records by series so a series lives on one partition (DESIGN §8).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace gw {

class KafkaProducer {
 public:
  // Throws std::runtime_error on bad properties.
  KafkaProducer(const std::map<std::string, std::string>& properties, std::string topic);
  ~KafkaProducer();
  // Creates the topic with `partitions` when it does not exist; returns an error text or "".
  std::string ensure_topic(int partitions, int timeout_ms = 30000);
  void produce(std::string_view key, std::string_view value);
  // Waits for delivery of everything produced; returns the number of failed deliveries.
  uint64_t flush(int timeout_ms = 60000);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw
