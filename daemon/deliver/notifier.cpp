// Notifier: one worker thread and one bounded queue per target (Alertmanager or webhook).
// Firing alerts are re-sent every resend_interval with endsAt ahead of the next send; a
// resolved alert is sent once with endsAt set. A failed POST is retried with exponential
// backoff; the batch stays at the head of the queue, so nothing is lost while the target is down
// unless the queue overflows (oldest dropped first, counted).
#include <curl/curl.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "guardwatch/decode.hpp"
#include "guardwatch/export.hpp"
#include "guardwatch/log.hpp"
#include "guardwatch/notify.hpp"

namespace gw {

using nlohmann::json;

int64_t backoff_ms(int attempt, int64_t max_ms) {
  int64_t v = 500;
  for (int i = 0; i < attempt && v < max_ms; ++i) v *= 2;
  return std::min(v, max_ms);
}

json Notifier::alert_payload(const Alert& a, bool resolved, int64_t ends_at_ms, const std::string& external_url) {
  json labels = json::object();
  for (auto& [k, v] : a.labels) labels[k] = v;
  json ann = json::object();
  for (auto& [k, v] : a.annotations) ann[k] = v;
  // The evidence, for whoever reads the notification (rule annotations of the same name win).
  auto put = [&](const char* k, const std::string& v) {
    if (!ann.contains(k)) ann[k] = v;
  };
  put("effect", fmt::format("{:.6g}", a.evidence.effect));
  put("relative_effect", fmt::format("{:.6g}", a.evidence.relative));
  put("p_value", fmt::format("{:.3g}", a.evidence.p_value));
  put("current", fmt::format("{:.6g} (n={})", a.evidence.current.value, a.evidence.current.n));
  put("baseline", fmt::format("{:.6g} (n={})", a.evidence.baseline.value, a.evidence.baseline.n));
  if (!a.exemplars.empty()) {
    std::string ex;
    for (auto& e : a.exemplars) {
      if (!ex.empty()) ex += ", ";
      ex += e.request_id.empty() ? "(no id)" : e.request_id;
      if (!e.topic.empty()) ex += fmt::format(" [{}/{}@{}]", e.topic, e.partition, e.offset);
    }
    put("exemplars", ex);
  }
  return {{"labels", labels},
          {"annotations", ann},
          {"startsAt", format_rfc3339(a.active_at)},
          {"endsAt", format_rfc3339(std::max(ends_at_ms, a.active_at))},
          {"generatorURL", external_url + "/api/v1/alerts?alertname=" + a.rule}};
  (void)resolved;
}

namespace {

struct Target {
  std::string name;  // for metric labels: the URL without credentials
  std::string url;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<json> queue;
  std::atomic<uint64_t> sent{0}, failed{0}, dropped{0};
  std::atomic<bool> in_flight{false};
  std::thread worker;
};

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

struct Notifier::Impl {
  AlertingConfig cfg;
  std::function<int64_t()> wall;
  int64_t eval_interval;
  std::vector<std::unique_ptr<Target>> targets;
  std::atomic<bool> stopping{false};
  std::mutex mu;  // active alerts
  struct Active {
    Alert alert;
    int64_t last_sent = 0;
  };
  std::map<std::string, Active> active;
  std::unique_ptr<prometheus::Collectable> collector;

  int64_t ends_at(int64_t now) const { return now + 4 * std::max(cfg.resend_interval_ms, eval_interval); }

  void enqueue(const json& alert) {
    for (auto& t : targets) {
      std::lock_guard g(t->mu);
      while (t->queue.size() >= cfg.queue_capacity) {
        t->queue.pop_front();
        ++t->dropped;
      }
      t->queue.push_back(alert);
      t->cv.notify_one();
    }
  }

  bool post(CURL* curl, const std::string& url, const std::string& body, std::string& error) {
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(body.size()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, long(cfg.timeout_ms));
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "guardwatch");
    struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    std::string auth;
    if (!cfg.bearer_token.empty()) {
      auth = "Authorization: Bearer " + cfg.bearer_token;
      headers = curl_slist_append(headers, auth.c_str());
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (!cfg.basic_auth_user.empty()) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, cfg.basic_auth_user.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg.basic_auth_password.c_str());
    }
    if (!cfg.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, cfg.ca_file.c_str());
    if (!cfg.cert_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLCERT, cfg.cert_file.c_str());
    if (!cfg.key_file.empty()) curl_easy_setopt(curl, CURLOPT_SSLKEY, cfg.key_file.c_str());
    if (cfg.insecure_skip_verify) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    // The multi interface, polled in 100 ms steps, so shutdown can abort a POST in flight at
    // once: a target that never answers must not hold the exit past its deadline.
    CURLcode rc = CURLE_OK;
    CURLM* multi = curl_multi_init();
    curl_multi_add_handle(multi, curl);
    for (int running = 1;;) {
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        rc = CURLE_FAILED_INIT;
        break;
      }
      if (!running) {
        int left = 0;
        while (CURLMsg* m = curl_multi_info_read(multi, &left))
          if (m->msg == CURLMSG_DONE) rc = m->data.result;
        break;
      }
      if (stopping) {
        rc = CURLE_ABORTED_BY_CALLBACK;
        break;
      }
      curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    curl_multi_remove_handle(multi, curl);
    curl_multi_cleanup(multi);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      error = curl_easy_strerror(rc);
      return false;
    }
    if (status < 200 || status >= 300) {
      error = "HTTP " + std::to_string(status);
      return false;
    }
    return true;
  }

  void run(Target& t) {
    CURL* curl = curl_easy_init();
    int attempt = 0;
    while (true) {
      json batch = json::array();
      {
        std::unique_lock g(t.mu);
        t.cv.wait(g, [&] { return stopping || !t.queue.empty(); });
        if (t.queue.empty()) break;
        for (size_t i = 0; i < t.queue.size() && batch.size() < 64; ++i) batch.push_back(t.queue[i]);
        t.in_flight = true;
      }
      std::string error;
      if (post(curl, t.url, batch.dump(), error)) {
        std::lock_guard g(t.mu);
        // Everything sent leaves the queue (drops may have shifted it: remove by count from the front).
        size_t n = std::min(batch.size(), t.queue.size());
        t.queue.erase(t.queue.begin(), t.queue.begin() + long(n));
        t.sent += batch.size();
        t.in_flight = false;
        attempt = 0;
        t.cv.notify_all();
      } else {
        t.failed += batch.size();
        int64_t wait = backoff_ms(attempt++, cfg.max_backoff_ms);
        std::unique_lock g(t.mu);
        log::sampled("notify:" + t.name, 0.2, log::Level::kWarn,
                     fmt::format("notification to {} failed ({}), retrying in {} ms; {} queued", t.name, error, wait, t.queue.size()));
        t.in_flight = false;
        t.cv.notify_all();
        if (t.cv.wait_for(g, std::chrono::milliseconds(wait), [&] { return stopping.load(); })) {
          if (attempt > 3) break;  // shutting down: a few quick tries, then give up
        }
      }
    }
    curl_easy_cleanup(curl);
  }
};

namespace {
std::string redact(const std::string& url) {
  // http://user:pass@host -> http://host
  auto scheme = url.find("://");
  auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme != std::string::npos && at != std::string::npos && (slash == std::string::npos || at < slash))
    return url.substr(0, scheme + 3) + url.substr(at + 1);
  return url;
}

class NotifierCollector : public prometheus::Collectable {
 public:
  explicit NotifierCollector(const Notifier::Impl& im) : im_(im) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Notifier::Impl& im_;
};
}  // namespace

std::vector<prometheus::MetricFamily> NotifierCollector::Collect() const {
  using prometheus::ClientMetric;
  using prometheus::MetricFamily;
  using prometheus::MetricType;
  auto sent = metric_family("guardwatch_notifications_sent_total", "Alerts delivered, per target.", MetricType::Counter);
  auto failed = metric_family("guardwatch_notifications_failed_total", "Alerts in POSTs that failed (they are retried), per target.", MetricType::Counter);
  auto dropped = metric_family("guardwatch_notifications_dropped_total", "Alerts dropped because the target's queue was full.", MetricType::Counter);
  auto queued = metric_family("guardwatch_notification_queue_length", "Alerts waiting for delivery, per target.", MetricType::Gauge);
  auto active = metric_family("guardwatch_notifications_active_alerts", "Firing alerts the notifier re-sends.", MetricType::Gauge);
  for (auto& t : im_.targets) {
    ClientMetric m;
    m.label = {{"target", t->name}};
    m.counter.value = double(t->sent);
    sent.metric.push_back(m);
    m.counter.value = double(t->failed);
    failed.metric.push_back(m);
    m.counter.value = double(t->dropped);
    dropped.metric.push_back(m);
    {
      std::lock_guard g(t->mu);
      m.gauge.value = double(t->queue.size());
    }
    queued.metric.push_back(m);
  }
  {
    ClientMetric m;
    std::lock_guard g(const_cast<std::mutex&>(im_.mu));
    m.gauge.value = double(im_.active.size());
    active.metric.push_back(m);
  }
  return {sent, failed, dropped, queued, active};
}

Notifier::Notifier(const AlertingConfig& cfg, std::function<int64_t()> wall_ms, int64_t eval_interval_ms)
    : impl_(std::make_unique<Impl>()) {
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->cfg = cfg;
  impl_->wall = std::move(wall_ms);
  impl_->eval_interval = eval_interval_ms;
  for (auto& u : cfg.alertmanagers) {
    auto t = std::make_unique<Target>();
    std::string base = u;
    while (!base.empty() && base.back() == '/') base.pop_back();
    t->url = base.ends_with("/api/v2/alerts") ? base : base + "/api/v2/alerts";
    t->name = redact(t->url);
    impl_->targets.push_back(std::move(t));
  }
  for (auto& u : cfg.webhooks) {
    auto t = std::make_unique<Target>();
    t->url = u;
    t->name = redact(u);
    impl_->targets.push_back(std::move(t));
  }
  for (auto& t : impl_->targets)
    t->worker = std::thread([impl = impl_.get(), tp = t.get()] { impl->run(*tp); });
  impl_->collector = std::make_unique<NotifierCollector>(*impl_);
}

Notifier::~Notifier() {
  // A POST in flight sees `stopping` within 100 ms (see post()), so the joins are quick.
  impl_->stopping = true;
  for (auto& t : impl_->targets) {
    t->cv.notify_all();
    if (t->worker.joinable()) t->worker.join();
  }
}

bool Notifier::enabled() const { return !impl_->targets.empty(); }
const prometheus::Collectable& Notifier::collector() const { return *impl_->collector; }

void Notifier::on_event(const AlertEvent& e) {
  if (!enabled() || e.kind == "pending") return;
  std::string key;
  for (auto& [k, v] : e.alert.labels) key += k + "=" + v + ",";
  int64_t now = impl_->wall();
  json payload;
  {
    std::lock_guard g(impl_->mu);
    if (e.kind == "firing") {
      impl_->active[key] = {e.alert, now};
      payload = alert_payload(e.alert, false, impl_->ends_at(now), impl_->cfg.external_url);
    } else {
      impl_->active.erase(key);
      payload = alert_payload(e.alert, true, e.alert.resolved_at, impl_->cfg.external_url);
    }
  }
  impl_->enqueue(payload);
}

void Notifier::tick() {
  if (!enabled()) return;
  int64_t now = impl_->wall();
  std::vector<json> due;
  {
    std::lock_guard g(impl_->mu);
    for (auto& [k, a] : impl_->active)
      if (now - a.last_sent >= impl_->cfg.resend_interval_ms) {
        a.last_sent = now;
        due.push_back(alert_payload(a.alert, false, impl_->ends_at(now), impl_->cfg.external_url));
      }
  }
  for (auto& p : due) impl_->enqueue(p);
}

size_t Notifier::drain(int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t left = 0;
  for (auto& t : impl_->targets) {
    std::unique_lock g(t->mu);
    t->cv.wait_until(g, deadline, [&] { return t->queue.empty() && !t->in_flight; });
    left += t->queue.size();
  }
  return left;
}

}  // namespace gw
