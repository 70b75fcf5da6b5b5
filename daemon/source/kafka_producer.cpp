#include <librdkafka/rdkafka.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "guardwatch/log.hpp"
#include "guardwatch/producer.hpp"

namespace gw {

struct KafkaProducer::Impl {
  rd_kafka_t* rk = nullptr;
  std::string topic;
  std::atomic<uint64_t> failed{0};
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err) {
      static_cast<Impl*>(opaque)->failed.fetch_add(1);
      log::sampled("produce", 1, log::Level::kWarn, std::string("kafka: delivery failed: ") + rd_kafka_err2str(m->err));
    }
  }
  ~Impl() {
    if (rk) rd_kafka_destroy(rk);
  }
};

KafkaProducer::KafkaProducer(const std::map<std::string, std::string>& props, std::string topic) : impl_(std::make_unique<Impl>()) {
  impl_->topic = std::move(topic);
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(k + ": " + err);
    }
  };
  set("linger.ms", "20");
  set("batch.num.messages", "10000");
  set("queue.buffering.max.messages", "500000");
  set("compression.type", "lz4");
  set("enable.idempotence", "true");
  for (auto& [k, v] : props)
    if (k != "group.id") set(k, v);
  rd_kafka_conf_set_dr_msg_cb(conf, Impl::on_delivery);
  rd_kafka_conf_set_opaque(conf, impl_.get());
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!impl_->rk) throw std::runtime_error(std::string("kafka producer: ") + err);
}

KafkaProducer::~KafkaProducer() {
  if (impl_->rk) rd_kafka_flush(impl_->rk, 10000);
}

std::string KafkaProducer::ensure_topic(int partitions, int timeout_ms) {
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(impl_->topic.c_str(), partitions, -1, nullptr, 0);
  rd_kafka_queue_t* q = rd_kafka_queue_new(impl_->rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(impl_->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  char err[256];
  rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof err);
  rd_kafka_CreateTopics(impl_->rk, &nt, 1, opts, q);
  std::string result;
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
  if (!ev) {
    result = "timed out creating topic " + impl_->topic;
  } else if (rd_kafka_event_error(ev)) {
    result = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      auto e = rd_kafka_topic_result_error(res[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) result = rd_kafka_topic_result_error_string(res[i]);
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  return result;
}

void KafkaProducer::produce(std::string_view key, std::string_view value) {
  // rd_kafka_produceva, not producev: producev's RD_KAFKA_V_* macros are GNU statement
  // expressions, which clang's -Wpedantic rejects.
  rd_kafka_vu_t vu[4] = {};
  vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  vu[0].u.cstr = impl_->topic.c_str();
  vu[1].vtype = RD_KAFKA_VTYPE_KEY;
  vu[1].u.mem = {key.empty() ? nullptr : const_cast<char*>(key.data()), key.size()};
  vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[2].u.mem = {const_cast<char*>(value.data()), value.size()};
  vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[3].u.i = RD_KAFKA_MSG_F_COPY;
  for (;;) {
    rd_kafka_error_t* err = rd_kafka_produceva(impl_->rk, vu, 4);
    if (!err) break;
    rd_kafka_resp_err_t e = rd_kafka_error_code(err);
    rd_kafka_error_destroy(err);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(impl_->rk, 50);
      continue;
    }
    impl_->failed.fetch_add(1);
    log::sampled("produce", 1, log::Level::kWarn, std::string("kafka: produce failed: ") + rd_kafka_err2str(e));
    break;
  }
  rd_kafka_poll(impl_->rk, 0);
}

uint64_t KafkaProducer::flush(int timeout_ms) {
  if (rd_kafka_flush(impl_->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) log::warn("kafka: flush timed out");
  return impl_->failed.load() + uint64_t(rd_kafka_outq_len(impl_->rk));
}

}  // namespace gw
