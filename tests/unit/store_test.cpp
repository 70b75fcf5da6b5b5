#include <doctest/doctest.h>

#include <cmath>

#include "guardwatch/store.hpp"
#include "helpers.hpp"

using namespace gw;

namespace {
constexpr int64_t T0 = 1'795'672'800'000;  // 2026-11-26T06:00:00Z, minute-aligned

Observation obs(const MetricRegistry& reg, bool refusal, double latency_s) {
  Observation o;
  o.values.assign(reg.size(), std::nan(""));
  o.values[kRefusal] = refusal;
  o.values[kLatency] = latency_s;
  return o;
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("store: windows merge buckets and expire old ones") {
  Config cfg = gwtest::default_config();
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  Series& s = st.series_for({"m", "v1", "chat", "control"});
  // 10 minutes, one record per second; refusals in minute 9 only.
  for (int i = 0; i < 600; ++i) st.add(s, T0 + i * 1000, obs(reg, i >= 540, 1.0 + (i % 60) / 100.0));
  int64_t end = T0 + 600'000;
  WindowAgg w1 = st.query(s, end, 60'000);
  CHECK(w1.records == 60);
  CHECK(w1.props[kRefusal].successes == 60);
  CHECK(w1.props[kRefusal].ratio() == 1.0);
  WindowAgg w5 = st.query(s, end, 300'000);
  CHECK(w5.records == 300);
  CHECK(w5.props[kRefusal].ratio() == doctest::Approx(0.2));
  CHECK(w5.dists[kLatency].count == 300);
  CHECK(w5.dists[kLatency].min == doctest::Approx(1.0));
  CHECK(w5.dists[kLatency].max == doctest::Approx(1.59));
  // An offset window: minutes 2-3.
  WindowAgg off = st.query(s, T0 + 240'000, 120'000);
  CHECK(off.records == 120);
  CHECK(off.props[kRefusal].successes == 0);
  // Long after: the fine tier has wrapped; the 1m window is empty, the data lives in the coarse tier.
  Observation late = obs(reg, false, 2.0);
  st.add(s, T0 + 3 * 3'600'000, late);
  CHECK(st.query(s, T0 + 3 * 3'600'000 + 1, 60'000).records == 1);
  WindowAgg old = st.query(s, T0 + 900'000, 900'000);  // answered from 15m buckets
  CHECK(old.records == 600);
  CHECK(old.props[kRefusal].successes == 60);
  // Beyond the retention (27h) everything is gone.
  st.add(s, T0 + 30 * 3'600'000, late);
  CHECK(st.query(s, T0 + 900'000, 900'000).records == 0);
}

TEST_CASE("store: exemplars keep per 15 s slot the first success and the extremes") {
  Config cfg = gwtest::default_config();
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  Series& s = st.series_for({"m", "v1", "chat", "control"});
  Record rec;
  rec.fields.assign(kBuiltinFieldCount, FieldValue{});
  auto add = [&](int64_t ts, bool refusal, double latency, std::string_view id) {
    rec.fields[kRequestId].type = FieldValue::kString;
    rec.fields[kRequestId].str = id;
    st.add(s, ts, obs(reg, refusal, latency), &rec);
  };
  auto ids = [&](int metric, int64_t from, int64_t to, bool largest) {
    std::vector<Store::ExemplarOut> out;
    st.exemplars(s, metric, from, to, largest, out);
    std::vector<std::string> r;
    for (auto& x : out) r.emplace_back(x.slot->id, x.slot->id_len);
    return r;
  };
  using V = std::vector<std::string>;
  // Slot [T0, T0+15s): three refusals (the first, at the slot's first millisecond, is kept),
  // latencies 2, 5, 1.
  add(T0, true, 2.0, "a");
  add(T0 + 1000, true, 5.0, "b");
  add(T0 + 14'999, true, 1.0, "c");
  // The next slot starts exactly at T0+15s.
  add(T0 + 15'000, true, 3.0, "d");
  CHECK(ids(kRefusal, T0, T0 + 15'000, true) == V{"a"});
  CHECK(ids(kLatency, T0, T0 + 15'000, true) == V{"b"});
  CHECK(ids(kLatency, T0, T0 + 15'000, false) == V{"c"});
  // Newest success first; largest latency first.
  CHECK(ids(kRefusal, T0, T0 + 30'000, true) == V{"d", "a"});
  CHECK(ids(kLatency, T0, T0 + 30'000, true) == V{"b", "d"});
  // 12 slots later the ring index of the first slot comes round again: the new epoch replaces
  // the old one's exemplars even with smaller values.
  add(T0 + 12 * 15'000 + 5, true, 0.5, "e");
  CHECK(ids(kLatency, T0, T0 + 15'000, true).empty());
  CHECK(ids(kLatency, T0 + 12 * 15'000, T0 + 13 * 15'000, true) == V{"e"});
  CHECK(ids(kRefusal, T0, T0 + 13 * 15'000, true) == V{"e", "d"});
}

TEST_CASE("store: cardinality caps fold into __other__ and count") {
  Config cfg = gwtest::config("series: {max_values_per_label: 3, max_series: 5, label_caps: {variant: 1}}");
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("model-" + std::to_string(i));
  for (auto& n : names) st.add(st.series_for({n, "v", "chat", "a"}), T0, obs(reg, false, 1));
  // 3 distinct models kept, the rest folded into one __other__ series.
  CHECK(st.series().size() == 4);
  CHECK(st.folded()[0] == 997);
  Series& other = st.series_for({"model-999", "v", "chat", "a"});
  CHECK(other.labels[0] == Store::kOther);
  CHECK(st.query(other, T0 + 1, 60'000).records == 997);
  // A second variant value exceeds the per-label cap of 1.
  Series& v2 = st.series_for({"model-0", "v", "chat", "b"});
  CHECK(v2.labels[3] == Store::kOther);
  CHECK(st.folded()[3] == 1);
  // The global cap (5) folds whole label sets.
  st.series_for({"model-1", "v", "chat", "a"});
  st.series_for({"model-2", "v", "chat", "a"});
  Series& g = st.series_for({"model-0", "v", "other-endpoint", "a"});
  CHECK(st.series().size() <= 6);
  CHECK(g.labels[0] == Store::kOther);
  CHECK(st.folded_global() >= 1);
}
}

TEST_SUITE("unit") {
TEST_CASE("store: a folded label set counts on every record, also once its fold is remembered") {
  Config cfg = gwtest::config("series: {max_values_per_label: 2, max_series: 3}");
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  st.series_for({"a", "v", "chat", "c"});
  st.series_for({"b", "v", "chat", "c"});  // the model cap (2) is reached
  Series& other_model = st.series_for({"z", "v", "chat", "c"});
  CHECK(other_model.labels == std::vector<std::string>{Store::kOther, "v", "chat", "c"});
  CHECK(st.folded()[0] == 1);
  for (int i = 0; i < 5; ++i) CHECK(&st.series_for({"z", "v", "chat", "c"}) == &other_model);
  CHECK(st.folded()[0] == 6);
  CHECK(&st.series_for({"y", "v", "chat", "c"}) == &other_model);
  CHECK(st.folded()[0] == 7);
  CHECK(&st.series_for({"a", "v", "chat", "c"}) != &other_model);  // kept values stay kept
  CHECK(st.folded()[0] == 7);
  // Three series exist: a new label set within the per-label caps folds whole (max_series).
  Series& global = st.series_for({"a", "v", "search", "c"});
  CHECK(global.labels == std::vector<std::string>(4, Store::kOther));
  CHECK(st.folded_global() == 1);
  for (int i = 0; i < 3; ++i) CHECK(&st.series_for({"a", "v", "search", "c"}) == &global);
  CHECK(st.folded_global() == 4);
  CHECK(st.folded()[0] == 7);
  // More folded keys than are remembered at once: every record still counts once.
  std::vector<std::string> models;
  for (int i = 0; i < 10'000; ++i) models.push_back("m" + std::to_string(i));
  size_t elsewhere = 0;
  for (int round = 0; round < 2; ++round)
    for (auto& m : models) elsewhere += &st.series_for({m, "v", "chat", "c"}) != &other_model;
  CHECK(elsewhere == 0);
  CHECK(st.folded()[0] == 7 + 20'000);
  CHECK(st.series().size() == 4);
  // Long label values: what is remembered stays within its byte budget (4 MiB), and counts hold.
  size_t before = st.memory_bytes();
  for (int i = 0; i < 200; ++i) {
    std::string m = std::to_string(i) + std::string(64 << 10, 'x');
    for (int round = 0; round < 2; ++round) elsewhere += &st.series_for({m, "v", "chat", "c"}) != &other_model;
  }
  CHECK(elsewhere == 0);
  CHECK(st.folded()[0] == 7 + 20'000 + 400);
  CHECK(st.memory_bytes() < before + (5 << 20));
  // A label set longer than that whole budget is counted but not kept, and keeps nothing else
  // from being kept: what is remembered does not shrink.
  for (int i = 0; i < 50; ++i) st.series_for({"short" + std::to_string(i), "v", "chat", "c"});
  size_t kept = st.memory_bytes();
  const std::string huge(5 << 20, 'h');
  CHECK(&st.series_for({huge, "v", "chat", "c"}) == &other_model);
  CHECK(st.folded()[0] == 7 + 20'000 + 400 + 50 + 1);
  CHECK(st.memory_bytes() >= kept);
}

TEST_CASE("store: expire drops idle series, frees their label values for new ones and keeps the rest intact") {
  Config cfg = gwtest::config("series: {max_values_per_label: 2, max_series: 3}");
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  constexpr int64_t H = 3'600'000;
  // Model a's version v1 until T0, its v2 later; model b (v1) later too.
  st.add(st.series_for({"a", "v1", "chat", "c"}), T0 - H, obs(reg, true, 1));
  st.add(st.series_for({"a", "v1", "chat", "c"}), T0, obs(reg, true, 1));
  st.add(st.series_for({"b", "v1", "chat", "c"}), T0 + 2 * H, obs(reg, false, 2));
  st.add(st.series_for({"a", "v2", "chat", "c"}), T0 + 2 * H, obs(reg, false, 3));
  // The version cap (2) is full, and so is max_series (3): a third version folds whole.
  Series& other = st.series_for({"a", "v3", "chat", "c"});
  CHECK(other.labels == std::vector<std::string>(4, Store::kOther));
  st.add(other, T0 + 2 * H, obs(reg, false, 4));
  REQUIRE(st.series().size() == 4);

  CHECK(st.expire(T0) == 0);  // nothing older than the cutoff
  CHECK(st.series().size() == 4);
  CHECK(st.expire(T0 + 1) == 1);  // a/v1's newest record is at T0
  REQUIRE(st.series().size() == 3);
  for (auto& s : st.series()) CHECK_FALSE((s->labels[0] == "a" && s->labels[1] == "v1"));
  // What stays keeps its data.
  Series& b = st.series_for({"b", "v1", "chat", "c"});
  CHECK(st.query(b, T0 + 2 * H + 1, 60'000).records == 1);
  CHECK(st.query(b, T0 + 2 * H + 1, 60'000).dists[kLatency].max == doctest::Approx(2));
  CHECK(st.query(other, T0 + 2 * H + 1, 60'000).records == 1);
  // v1 is still held by b's series: the version cap is still full.
  CHECK(&st.series_for({"a", "v4", "chat", "c"}) == &other);
  CHECK(st.series().size() == 3);

  // Everything goes. The fold of (a, v4) remembered above pointed at a series that is gone: it is
  // decided again (ASan would catch a stale pointer), and the versions' places are free.
  CHECK(st.expire(T0 + 2 * H + 1) == 3);
  CHECK(st.series().empty());
  Series& v4 = st.series_for({"a", "v4", "chat", "c"});
  CHECK(v4.labels[1] == "v4");
  Series& v5 = st.series_for({"a", "v5", "chat", "c"});
  CHECK(v5.labels[1] == "v5");
  Series& v6 = st.series_for({"a", "v6", "chat", "c"});  // over the version cap again
  CHECK(v6.labels[1] == Store::kOther);
  CHECK(st.series().size() == 3);
  for (Series* s : {&v4, &v5, &v6}) st.add(*s, T0 + 3 * H, obs(reg, false, 1));
  CHECK(st.expire(T0 + 3 * H) == 0);
  CHECK(&st.series_for({"a", "v6", "chat", "c"}) == &v6);

  // An emptied series (a revoked partition's) holds nothing and goes at the next pass.
  st.clear_series(v5);
  CHECK(st.expire(T0) == 1);
  CHECK(st.series().size() == 2);
  CHECK(&st.series_for({"a", "v4", "chat", "c"}) == &v4);
  CHECK(st.series_for({"a", "v8", "chat", "c"}).labels[1] == "v8");  // v5's place is free
  CHECK(st.series().size() == 3);
}

TEST_CASE("store: series keys keep any label value apart, control bytes and long values included") {
  Config cfg = gwtest::default_config();
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  const std::string ab("a\x1f" "b"), bc("b\x1f" "c"), nul("a\0b", 3), long_value(300, 'x'), l128(128, 'x'), l127(127, 'x');
  // Label sets that a key joined with a separator byte would confuse: "a\x1fb" + "c" against
  // "a" + "b\x1fc".
  std::vector<std::vector<std::string_view>> sets = {
      {ab, "c", "chat", "c"}, {"a", bc, "chat", "c"}, {nul, "", "chat", "c"}, {"", "", "", ""},
      {long_value, "v", "chat", "c"}, {l128, "v", "chat", "c"}, {l127, "v", "chat", "c"}};
  std::vector<Series*> made;
  for (auto& ls : sets) {
    Series& s = st.series_for(ls);
    made.push_back(&s);
    REQUIRE(s.labels.size() == 4);
    for (size_t i = 0; i < 4; ++i) CHECK(s.labels[i] == ls[i]);
  }
  CHECK(st.series().size() == sets.size());
  // The same labels find the same series, by labels or by a key built label by label.
  for (size_t k = 0; k < sets.size(); ++k) {
    CHECK(&st.series_for(sets[k]) == made[k]);
    std::string key;
    for (auto v : sets[k]) Store::append_key(key, v);
    CHECK(&st.series_for_key(key) == made[k]);
  }
  // A series first seen by key gets its labels back from the key.
  const std::vector<std::string> labels = {"m", long_value.substr(0, 200), "", "d"};
  std::string key;
  for (auto& v : labels) Store::append_key(key, v);
  Series& fresh = st.series_for_key(key);
  CHECK(fresh.labels == labels);
  CHECK(&st.series_for({labels[0], labels[1], labels[2], labels[3]}) == &fresh);
}

TEST_CASE("store: memory per series stays within budget (docs/operations.md)") {
  Config cfg = gwtest::default_config();
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  Series& s = st.series_for({"m", "v", "chat", "control"});
  uint64_t state = 7;
  auto u = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double(state >> 11) + 0.5) / double(1ULL << 53);
  };
  auto lognormal = [&](double median, double sigma) {  // Box-Muller
    return median * std::exp(sigma * std::sqrt(-2 * std::log(u())) * std::cos(6.283185307179586 * u()));
  };
  Observation o;
  o.values.assign(reg.size(), std::nan(""));
  // Every bucket of both tiers (27 h), one record every 2 s.
  for (int64_t t = 0; t < st.retention_ms(); t += 2000) {
    for (size_t m = 0; m < kLatency; ++m) o.values[m] = u() < 0.05;
    o.values[kLatency] = lognormal(0.9, 0.45);
    o.values[kTtft] = lognormal(0.22, 0.35);
    o.values[kResponseChars] = std::min(4000.0, std::max(200.0, lognormal(1200, 0.6)));
    o.values[kResponseWords] = o.values[kResponseChars] / 6.5;
    o.values[kCompletionTokensMetric] = o.values[kResponseChars] / 4;
    o.values[kTokensPerSecond] = o.values[kCompletionTokensMetric] / o.values[kLatency];
    o.values[kCost] = o.values[kCompletionTokensMetric] * 1e-5;
    o.values[kJudge] = std::min(1.0, lognormal(0.8, 0.1));
    st.add(s, T0 + t, o);
  }
  size_t bytes = st.memory_bytes();
  CAPTURE(bytes);
  CHECK(bytes > 160 * 1024);  // the fixed part of the formula is really there
  CHECK(bytes <= 512 * 1024);
}
}
