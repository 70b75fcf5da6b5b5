#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <new>
#include <thread>

#include "guardwatch/engine.hpp"
#include "guardwatch/export.hpp"
#include "guardwatch/generate.hpp"
#include "helpers.hpp"

using namespace gw;

namespace {
std::string rec(int64_t ts_s, const char* model, const char* response, int latency = 500) {
  return fmt::format(R"({{"ts":{},"model":"{}","endpoint":"chat","variant":"control","latency_ms":{},"status":"ok","response":"{}"}})",
                     ts_s, model, latency, response);
}
// The default scenario's records for `minutes` of event time, with their file positions.
struct Lines {
  std::vector<std::string> text;
  std::vector<std::string_view> views;
  std::vector<SourcePos> pos;
  explicit Lines(int minutes) {
    Scenario sc = default_scenario();
    sc.duration_ms = int64_t(minutes) * 60 * 1000;
    Generator g(sc);
    GeneratedRecord gr;
    while (g.next(gr)) text.push_back(gr.json);
  }
  void index() {  // after any edits of `text`
    views.assign(text.begin(), text.end());
    pos.assign(text.size(), SourcePos{});
    for (size_t i = 0; i < pos.size(); ++i) pos[i].line = int64_t(i + 1);
  }
};
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("engine: counts outcomes, applies good records and keeps going after bad ones") {
  Config cfg = gwtest::default_config();
  Engine e(cfg);
  int64_t t = 1'795'672'800;
  CHECK(e.ingest(rec(t, "a", "I can't help with that."), {}) == Outcome::kApplied);
  CHECK(e.ingest("garbage", {}) == Outcome::kInvalidJson);
  CHECK(e.ingest(rec(t + 1, "a", "See https://x.org"), {}) == Outcome::kApplied);
  CHECK(e.ingest(R"({"ts":"not a time","model":"a"})", {}) == Outcome::kBadTimestamp);
  CHECK(e.ingest(R"({"ts":99,"model":"a"})", {}) == Outcome::kBadTimestamp);
  CHECK(e.ingest(rec(t + 2, "a", "ok", -3), {}) == Outcome::kInvalidValue);
  // late: more than allowed_lateness (2m) behind the newest event
  CHECK(e.ingest(rec(t + 600, "a", "fine"), {}) == Outcome::kApplied);
  CHECK(e.ingest(rec(t + 400, "a", "fine"), {}) == Outcome::kLate);
  CHECK(e.ingest(rec(t + 500, "a", "fine"), {}) == Outcome::kApplied);
  CHECK(e.outcome_count(Outcome::kApplied) == 4);
  CHECK(e.outcome_count(Outcome::kLate) == 1);
  CHECK(e.records_seen() == 9);

  auto report = window_report(e, e.max_event_ms() + 1);
  REQUIRE(report["series"].size() == 1);
  auto& w1h = report["series"][0]["windows"]["1h"];
  CHECK(w1h["records"] == 4);
  CHECK(w1h["metrics"]["refusal"]["successes"] == 1);
  CHECK(w1h["metrics"]["citation"]["successes"] == 1);
  CHECK(w1h["metrics"]["latency"]["count"] == 4);
}

TEST_CASE("engine: a status string of digits that is no HTTP code (fuzzer regression)") {
  Config cfg = gwtest::default_config();
  Engine e(cfg);
  Observation o;
  Record* r = nullptr;
  CHECK(e.ingest(R"({"ts":1795672800,"status":"35913447280","response":"x"})", {}, &o, &r) == Outcome::kApplied);
  CHECK(o.values[kError] == 1);  // not a success code
  CHECK(e.ingest(R"({"ts":1795672800,"status":"404","response":"x"})", {}, &o, &r) == Outcome::kApplied);
  CHECK(o.values[kError] == 1);
  CHECK(e.ingest(R"({"ts":1795672800,"status":"200","response":"x"})", {}, &o, &r) == Outcome::kApplied);
  CHECK(o.values[kError] == 0);
}

TEST_CASE("engine: a revoked partition's series are emptied, warm-up records are counted apart") {
  Config cfg = gwtest::default_config();
  Engine e(cfg);
  int64_t t = 1'795'672'800;
  auto at = [](int32_t p, int64_t off, bool warm = false) {
    SourcePos pos;
    pos.topic = "logs";
    pos.partition = p;
    pos.offset = off;
    pos.warmup = warm;
    return pos;
  };
  auto records = [&](const char* model) {
    auto r = window_report(e, e.max_event_ms() + 1);
    for (auto& s : r["series"])
      if (s["labels"]["model"] == model) return s["windows"]["1h"]["records"].get<int>();
    return 0;
  };
  // Keyed by series: model a on partition 0, model b on partition 1.
  for (int i = 0; i < 5; ++i) CHECK(e.ingest(rec(t + i, "a", "x"), at(0, i)) == Outcome::kApplied);
  for (int i = 0; i < 3; ++i) CHECK(e.ingest(rec(t + i, "b", "x"), at(1, i, true)) == Outcome::kApplied);
  CHECK(e.outcome_count(Outcome::kApplied) == 5);
  CHECK(e.outcome_count(Outcome::kApplied, true) == 3);
  CHECK(e.ingest("garbage", at(1, 3, true)) == Outcome::kInvalidJson);
  CHECK(e.outcome_count(Outcome::kInvalidJson) == 0);
  CHECK(e.outcome_count(Outcome::kInvalidJson, true) == 1);
  CHECK(records("a") == 5);
  CHECK(records("b") == 3);

  CHECK_FALSE(e.revoke_partitions({{"logs", 1}}));  // b lived only on partition 1
  CHECK(records("a") == 5);
  CHECK(records("b") == 0);
  // Partition 1 comes back (re-read by its new owner): the series fills again.
  for (int i = 0; i < 3; ++i) CHECK(e.ingest(rec(t + i, "b", "x"), at(1, i, true)) == Outcome::kApplied);
  CHECK(records("b") == 3);

  // Not keyed: model a now also arrives on partition 2. Revoking partition 2 cannot split a's
  // windows, so every series is emptied and the caller re-reads what it keeps.
  CHECK(e.ingest(rec(t + 6, "a", "x"), at(2, 0)) == Outcome::kApplied);
  CHECK(records("a") == 6);
  CHECK(e.revoke_partitions({{"logs", 2}}));
  CHECK(records("a") == 0);
  CHECK(records("b") == 0);
}

TEST_CASE("engine: ingest_batch on two threads gives exactly what ingest gives, in the same order") {
  Config one = gwtest::default_config(), two = gwtest::default_config();
  one.input_threads = 1;
  two.input_threads = 2;
  Engine seq(one), par(two);
  std::vector<int64_t> order_seq, order_par;
  seq.on_applied([&] { order_seq.push_back(seq.max_event_ms()); });
  par.on_applied([&] { order_par.push_back(par.max_event_ms()); });
  Lines in(20);
  auto& lines = in.text;
  // Bad records of every stage mixed in: decoder, timestamp, value and lateness rejections.
  for (size_t i = 0; i < lines.size(); i += 97) lines[i] = i % 2 ? "not json" : R"({"ts":"yesterday","model":"m"})";
  for (size_t i = 50; i < lines.size(); i += 131) lines[i] = rec(1'700'000'000, "late", "x");
  in.index();
  auto& views = in.views;
  auto& pos = in.pos;
  for (size_t b = 0; b < views.size(); b += 3000) {
    size_t e = std::min(views.size(), b + 3000);
    std::vector<std::string_view> bv(views.begin() + long(b), views.begin() + long(e));
    std::vector<SourcePos> bp(pos.begin() + long(b), pos.begin() + long(e));
    for (size_t i = 0; i < bv.size(); ++i) seq.ingest(bv[i], bp[i]);
    par.ingest_batch(bv, bp);
  }
  REQUIRE(lines.size() > 10000);
  for (size_t o = 0; o < size_t(Outcome::kCount); ++o) CHECK(seq.outcome_count(Outcome(o)) == par.outcome_count(Outcome(o)));
  CHECK(par.outcome_count(Outcome::kInvalidJson) > 0);
  CHECK(par.outcome_count(Outcome::kLate) > 0);
  CHECK(order_seq == order_par);
  int64_t end = seq.max_event_ms() + 1;
  CHECK(window_report(seq, end).dump() == window_report(par, end).dump());
}

TEST_CASE("engine: batches submitted ahead are applied in order, also around single records") {
  Lines in(10);
  for (size_t i = 0; i < in.text.size(); i += 89) in.text[i] = "{broken";
  REQUIRE(in.text.size() > 5000);
  in.index();
  auto& views = in.views;
  auto& pos = in.pos;
  Config base = gwtest::default_config();
  base.input_threads = 1;
  Engine seq(base);
  std::vector<int64_t> want;
  seq.on_applied([&] { want.push_back(seq.max_event_ms()); });
  for (size_t i = 0; i < views.size(); ++i) seq.ingest(views[i], pos[i]);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    Config cfg = gwtest::default_config();
    cfg.input_threads = threads;
    Engine e(cfg);
    std::vector<int64_t> got;
    e.on_applied([&] { got.push_back(e.max_event_ms()); });
    // Uneven batches (1 to 700 records), up to three in flight; every 7th batch is followed by
    // single records through ingest(), which must come after everything submitted before them.
    std::vector<uint64_t> tickets;
    size_t i = 0, k = 0;
    while (i < views.size()) {
      size_t n = std::min(views.size() - i, size_t(1 + (k * 397) % 700));
      std::vector<std::string_view> bv(views.begin() + long(i), views.begin() + long(i + n));
      std::vector<SourcePos> bp(pos.begin() + long(i), pos.begin() + long(i + n));
      tickets.push_back(e.submit(bv, bp));
      i += n;
      if (tickets.size() >= 3) e.wait(tickets[tickets.size() - 3]);
      if (++k % 7 == 0)
        for (size_t m = 0; m < 3 && i < views.size(); ++m, ++i) e.ingest(views[i], pos[i]);
    }
    e.drain();
    CHECK(got == want);
    for (size_t o = 0; o < size_t(Outcome::kCount); ++o) CHECK(e.outcome_count(Outcome(o)) == seq.outcome_count(Outcome(o)));
    int64_t end = seq.max_event_ms() + 1;
    CHECK(window_report(e, end).dump() == window_report(seq, end).dump());
  }
}

TEST_CASE("engine: an exception out of an apply stops the batch there, and the rest is applied once") {
  Lines in(5);
  in.index();
  REQUIRE(in.views.size() > 1000);
  Config cfg = gwtest::default_config();
  Engine ref(cfg);
  ref.ingest_batch(in.views, in.pos);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    cfg.input_threads = threads;
    Engine e(cfg);
    uint64_t calls = 0;
    // The callback runs after its record is applied; the 100th throws once (inside a chunk).
    e.on_applied([&] {
      if (++calls == 100) throw std::runtime_error("callback failed");
    });
    uint64_t t = e.submit(in.views, in.pos);
    CHECK_THROWS_AS(e.wait(t), std::runtime_error);
    e.drain();  // goes on after the record whose callback threw
    CHECK(calls == ref.outcome_count(Outcome::kApplied));
    for (size_t o = 0; o < size_t(Outcome::kCount); ++o) CHECK(e.outcome_count(Outcome(o)) == ref.outcome_count(Outcome(o)));
    int64_t end = ref.max_event_ms() + 1;
    bool same_windows = window_report(e, end).dump() == window_report(ref, end).dump();
    CHECK(same_windows);
  }
}

// The batch's records are prepared on two threads; a record's preparation that throws (only a
// failed allocation could, short of the test hook) must surface from wait() in input order, on
// either thread, and the batch must go on from that record: nothing counted or applied twice.
TEST_CASE("engine: an exception while a record is prepared surfaces in order, and the batch goes on from that record") {
  Lines in(5);
  // Rejected records just before the one that throws: their counts must not double on the redo.
  const size_t fail_at = 1000;  // 0-based; inside chunk 31 (records 992-1023)
  for (size_t i = fail_at - 5; i < fail_at; i += 2) in.text[i] = "not json";
  in.index();
  REQUIRE(in.views.size() > 2000);
  Config cfg = gwtest::default_config();
  Engine ref(cfg);
  ref.ingest_batch(in.views, in.pos);
  Engine prefix(cfg);  // what must be applied when the error surfaces: everything before it
  prefix.ingest_batch({in.views.begin(), in.views.begin() + long(fail_at)}, {in.pos.begin(), in.pos.begin() + long(fail_at)});
  const uint64_t applied_before = prefix.outcome_count(Outcome::kApplied);
  REQUIRE(prefix.outcome_count(Outcome::kInvalidJson) >= 3);

  struct Case {
    int threads;
    int throws;        // how many preparations of the failing record throw
    bool any_thread;   // false: the failing record is whichever the helper prepares first
  };
  for (Case k : {Case{1, 1, true}, Case{1, 2, true}, Case{2, 1, true}, Case{2, 2, true}, Case{2, 1, false}}) {
    CAPTURE(k.threads);
    CAPTURE(k.throws);
    CAPTURE(k.any_thread);
    cfg.input_threads = k.threads;
    Engine e(cfg);
    uint64_t calls = 0;
    e.on_applied([&] { ++calls; });
    const std::thread::id me = std::this_thread::get_id();
    std::atomic<int64_t> target{k.any_thread ? int64_t(fail_at + 1) : 0};  // a line number
    std::atomic<int> left{k.throws};
    std::atomic<bool> on_helper{false};
    e.on_prepare([&](const SourcePos& p) {
      if (!k.any_thread && std::this_thread::get_id() != me) {
        int64_t none = 0;
        target.compare_exchange_strong(none, p.line);
      }
      if (p.line == target.load() && left.fetch_sub(1) > 0) {
        if (std::this_thread::get_id() != me) on_helper = true;
        throw std::bad_alloc();
      }
    });
    uint64_t t = e.submit(in.views, in.pos);
    for (int n = 0; n < k.throws; ++n) {
      CHECK_THROWS_AS(e.wait(t), std::bad_alloc);
      if (n == 0 && k.any_thread) CHECK(calls == applied_before);  // in order: all before it applied, none after
    }
    e.drain();
    if (!k.any_thread) CHECK(on_helper.load());
    CHECK(left.load() <= 0);
    CHECK(calls == ref.outcome_count(Outcome::kApplied));
    for (size_t o = 0; o < size_t(Outcome::kCount); ++o) CHECK(e.outcome_count(Outcome(o)) == ref.outcome_count(Outcome(o)));
    int64_t end = ref.max_event_ms() + 1;
    bool same_windows = window_report(e, end).dump() == window_report(ref, end).dump();
    CHECK(same_windows);
    // The engine keeps working for the next batch.
    e.on_prepare(nullptr);
    e.ingest_batch({in.views.begin(), in.views.begin() + 10}, {in.pos.begin(), in.pos.begin() + 10});
    CHECK(e.records_seen() == ref.records_seen() + 10);
  }
}

TEST_CASE("engine: future timestamps are rejected in live mode only") {
  Config cfg = gwtest::default_config();
  int64_t now = 1'795'672'800'000;
  Engine live(cfg, [now] { return now; });
  CHECK(live.ingest(rec(now / 1000 + 3600, "a", "x"), {}) == Outcome::kBadTimestamp);
  CHECK(live.ingest(rec(now / 1000 + 60, "a", "x"), {}) == Outcome::kApplied);
  Engine replay(cfg);
  CHECK(replay.ingest(rec(now / 1000 + 3600, "a", "x"), {}) == Outcome::kApplied);
}

TEST_CASE("engine: a series with no record for series.expire_after is dropped, in event time and on the wall clock") {
  const int64_t t0 = 1'795'672'800;  // seconds
  constexpr int64_t H = 3600;
  auto models = [](const Engine& e) {
    auto lock = e.lock();
    std::vector<std::string> m;
    for (auto& s : e.store().series()) m.push_back(s->labels[0]);
    std::sort(m.begin(), m.end());
    return m;
  };
  auto feed = [](Engine& e, const char* model, int64_t from_s, int n) {
    for (int i = 0; i < n; ++i) REQUIRE(e.ingest(rec(from_s + i, model, "Sure."), {}) == Outcome::kApplied);
  };
  SUBCASE("event time: the default drops it once the watermark is the coarsest tier's retention (27h) past its last record") {
    Config cfg = gwtest::default_config();
    Engine e(cfg);
    feed(e, "old", t0, 300);
    feed(e, "new", t0 + 20 * H, 300);
    CHECK(models(e) == std::vector<std::string>{"new", "old"});
    feed(e, "new", t0 + 27 * H + 100, 300);  // the watermark (2 minutes behind) stays short of it
    CHECK(models(e) == std::vector<std::string>{"new", "old"});
    CHECK(e.series_expired() == 0);
    feed(e, "new", t0 + 28 * H, 300);
    CHECK(models(e) == std::vector<std::string>{"new"});
    CHECK(e.series_expired() == 1);
    auto report = window_report(e, e.max_event_ms() + 1);
    REQUIRE(report["series"].size() == 1);
    CHECK(report["series"][0]["labels"]["model"] == "new");
    EngineCollector c(e, [&] { return e.max_event_ms() + 1; });
    std::string text = serialize_metrics({&c});
    CHECK(text.find("guardwatch_series_expired_total 1") != std::string::npos);
    CHECK(text.find("guardwatch_series 1") != std::string::npos);
    CHECK(text.find("model=\"old\"") == std::string::npos);
    // It comes back as a new series when its records do.
    feed(e, "old", t0 + 28 * H + 300, 10);
    CHECK(models(e) == std::vector<std::string>{"new", "old"});
    auto back = window_report(e, e.max_event_ms() + 1);
    for (auto& s : back["series"])
      if (s["labels"]["model"] == "old") CHECK(s["windows"]["1h"]["records"] == 10);
  }
  SUBCASE("evaluations due before a jump in event time still see a series the jump expires") {
    // Event-time evaluations run in the on_applied callback, up to the watermark. A jump across a
    // gap moves the watermark by hours in one record; the evaluations due in the gap must run
    // before the pass at the new watermark drops what they read. Here: x's one record at t0 is in
    // a 27h window ending at t0 + 27h, and the 257th record (the one that makes a pass) jumps
    // the watermark from t0 + 26h28m to t0 + 29h58m.
    Config cfg = gwtest::default_config();
    Engine e(cfg);
    constexpr int64_t kStep = 1'800'000, kWindow = 27 * H * 1000;
    int64_t next_due = (t0 * 1000 / kStep + 1) * kStep;
    std::map<int64_t, uint64_t> seen;  // due time -> x's records in the window ending there
    e.on_applied([&] {
      for (; next_due <= e.watermark_ms(); next_due += kStep) {
        auto lock = e.lock();
        seen[next_due] = 0;
        for (auto& sp : e.store().series())
          if (sp->labels[0] == "x") seen[next_due] += e.store().query(*sp, next_due, kWindow).records;
      }
    });
    feed(e, "x", t0, 1);
    for (int i = 0; i < 255; ++i) REQUIRE(e.ingest(rec(t0 + 26 * H + 1800, "y", "Sure."), {}) == Outcome::kApplied);
    REQUIRE(e.ingest(rec(t0 + 30 * H, "y", "Sure."), {}) == Outcome::kApplied);
    CHECK(e.series_expired() == 1);  // the pass ran at the jump
    const int64_t last_due = ((t0 + 27 * H) * 1000 / kStep) * kStep;  // the last due time whose window holds t0
    REQUIRE(seen.count(last_due));
    CHECK(seen[last_due] == 1);
    CHECK(seen[last_due + kStep] == 0);
  }
  SUBCASE("a shorter expire_after drops it sooner; off keeps it") {
    Config two = gwtest::config("series: {expire_after: 2h}");
    Config off = gwtest::config("series: {expire_after: off}");
    Engine a(two), b(off);
    for (Engine* e : {&a, &b}) {
      feed(*e, "old", t0, 300);
      feed(*e, "new", t0 + 3 * H, 300);
    }
    CHECK(models(a) == std::vector<std::string>{"new"});
    CHECK(models(b) == std::vector<std::string>{"new", "old"});
    feed(b, "new", t0 + 100 * H, 300);
    CHECK(models(b) == std::vector<std::string>{"new", "old"});
    CHECK(b.series_expired() == 0);
  }
  SUBCASE("live mode: the wall clock decides, not the event time of a backlog") {
    Config cfg = gwtest::default_config();
    int64_t now_s = t0 + 300;
    Engine e(cfg, [&] { return now_s * 1000; });
    feed(e, "old", t0, 300);
    // 28 hours later a backlog from 2 hours after t0 is read: its event time alone would drop
    // nothing, but nothing before now - 27h can be in any window the rules read now.
    now_s = t0 + 28 * H;
    feed(e, "new", t0 + 2 * H, 300);
    CHECK(models(e) == std::vector<std::string>{"new"});
    CHECK(e.series_expired() == 1);
    // The stream stops altogether: the daemon's timer calls expire_idle_series(), and 27h on
    // the last series goes too, with no record to trigger a pass.
    e.expire_idle_series();
    CHECK(models(e) == std::vector<std::string>{"new"});
    now_s = t0 + 2 * H + 300 + 27 * H + 1;
    e.expire_idle_series();
    CHECK(models(e).empty());
    CHECK(e.series_expired() == 2);
  }
}

TEST_CASE("engine: prometheus exposition has the window families") {
  Config cfg = gwtest::default_config();
  Engine e(cfg);
  for (int i = 0; i < 10; ++i) e.ingest(rec(1'795'672'800 + i, "m", i < 3 ? "I must decline." : "Sure!", 100 * (i + 1)), {});
  EngineCollector c(e, [&] { return e.max_event_ms() + 1; });
  std::string text = serialize_metrics({&c});
  CHECK(text.find("guardwatch_refusal_ratio{model=\"m\",model_version=\"\",endpoint=\"chat\",variant=\"control\",window=\"5m\"} 0.3") != std::string::npos);
  CHECK(text.find("guardwatch_records_total{outcome=\"applied\"} 10") != std::string::npos);
  CHECK(text.find("guardwatch_request_latency_seconds{model=\"m\"") != std::string::npos);
  CHECK(text.find("guardwatch_request_latency_seconds_count{model=\"m\",model_version=\"\",endpoint=\"chat\",variant=\"control\",window=\"5m\"} 10") != std::string::npos);
  CHECK(text.find("# TYPE guardwatch_request_latency_seconds summary") != std::string::npos);
  CHECK(text.find("quantile=\"0.95\"") != std::string::npos);
  CHECK(text.find("guardwatch_window_samples{") != std::string::npos);
}
}
