#include <doctest/doctest.h>

#include <cstdlib>

#include "guardwatch/config.hpp"

using namespace gw;

TEST_SUITE("unit") {
TEST_CASE("config: defaults without a file") {
  auto r = config_from_yaml("", "");
  REQUIRE(r.ok());
  CHECK(r.config.preset == "flat");
  CHECK(r.config.listen == "127.0.0.1:9464");
  CHECK(r.config.report_windows.size() == 4);
  CHECK(r.config.kafka_properties.at("group.id") == "guardwatch");
  // enough history for a 2h window one day ago
  CHECK(r.config.tiers.back().retention_ms() >= 26 * 3'600'000LL);
}

TEST_CASE("config: errors name file, line, column and key, and all are collected") {
  auto r = config_from_yaml(
      "listen: 127.0.0.1:1\n"
      "input:\n"
      "  preset: nope\n"
      "  fields: {respnse: /x}\n"
      "windows:\n"
      "  allowed_lateness: soon\n"
      "serie: {}\n",
      "gw.yaml");
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].str().rfind("gw.yaml:7:1: serie: unknown key", 0) == 0);
  bool preset = false, field = false, lateness = false;
  for (auto& e : r.errors) {
    if (e.key == "input.preset") preset = e.line == 3 && e.message.find("known: flat, openai") != std::string::npos;
    if (e.key == "input.fields.respnse") field = e.line == 4 && e.message.find("response") != std::string::npos;
    if (e.key == "windows.allowed_lateness") lateness = e.line == 6 && e.column == 21;
  }
  CHECK(preset);
  CHECK(field);
  CHECK(lateness);
}

TEST_CASE("config: YAML syntax errors have a position") {
  auto r = config_from_yaml("input: [unclosed\n", "bad.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line >= 1);
  CHECK(r.errors[0].message.find("YAML syntax error") == 0);
}

TEST_CASE("config: kafka properties pass through with ${ENV} expansion") {
  setenv("GW_TEST_SECRET", "s3cret", 1);
  auto r = config_from_yaml(
      "kafka:\n  topics: [a, b]\n  properties:\n    sasl.password: ${GW_TEST_SECRET}\n"
      "    bootstrap.servers: ${GW_TEST_UNSET_BROKERS:-localhost:9092}\n    fetch.max.bytes: 1048576\n",
      "k.yaml");
  REQUIRE(r.ok());
  CHECK(r.config.kafka_topics == std::vector<std::string>{"a", "b"});
  CHECK(r.config.kafka_properties.at("sasl.password") == "s3cret");
  CHECK(r.config.kafka_properties.at("bootstrap.servers") == "localhost:9092");
  CHECK(r.config.kafka_properties.at("fetch.max.bytes") == "1048576");
  auto bad = config_from_yaml("kafka: {properties: {sasl.password: '${GW_TEST_NOT_SET_AT_ALL}'}}", "k.yaml");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].message.find("GW_TEST_NOT_SET_AT_ALL") != std::string::npos);
}

TEST_CASE("config: windows longer than the retained history are errors") {
  auto r = config_from_yaml("windows: {report: [1m, 2d]}", "w.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "windows.report");
}

TEST_CASE("config: kafka.rewind, shutdown_timeout and web.tls") {
  auto r = config_from_yaml("kafka:\n  rewind: 2h\nshutdown_timeout: 3s\n", "a.yaml");
  REQUIRE(r.ok());
  CHECK(r.config.kafka_rewind_ms == 7'200'000);
  CHECK(r.config.shutdown_timeout_ms == 3000);
  CHECK(config_from_yaml("", "").config.kafka_rewind_ms == -1);  // auto
  CHECK(config_from_yaml("kafka: {rewind: off}\n", "").config.kafka_rewind_ms == 0);
  auto bad = config_from_yaml("kafka:\n  rewind: soon\nweb:\n  tls:\n    cert_file: /nonexistent/cert.pem\n", "b.yaml");
  REQUIRE(bad.errors.size() >= 2);
  CHECK(bad.errors[0].key == "web.tls.cert_file");
  CHECK(bad.errors[0].line == 5);
  bool rewind_err = false;
  for (auto& e : bad.errors) rewind_err |= e.key == "kafka.rewind" && e.line == 2;
  CHECK(rewind_err);
}

TEST_CASE("config: series.expire_after") {
  auto dflt = config_from_yaml("", "");
  CHECK(dflt.config.series_expire_after_ms == -1);  // auto: the coarsest tier's retention
  CHECK(dflt.config.expire_after_ms() == 27 * 3'600'000);
  auto tiers = config_from_yaml("windows: {tiers: [{resolution: 1m, slots: 120}, {resolution: 1h, slots: 48}]}", "");
  REQUIRE(tiers.ok());
  CHECK(tiers.config.expire_after_ms() == 48 * 3'600'000);
  CHECK(config_from_yaml("series: {expire_after: 36h}", "").config.expire_after_ms() == 36 * 3'600'000);
  CHECK(config_from_yaml("series: {expire_after: off}", "").config.expire_after_ms() == 0);
  CHECK(config_from_yaml("series: {expire_after: 1h}", "").ok());  // as long as the longest report window
  auto bad = config_from_yaml("series:\n  expire_after: soon\n", "s.yaml");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].key == "series.expire_after");
  CHECK(bad.errors[0].line == 2);
  // Shorter than a report window: series would go while their windows still hold data.
  auto short_ = config_from_yaml("series:\n  max_series: 10\n  expire_after: 30m\n", "s.yaml");
  REQUIRE(short_.errors.size() == 1);
  CHECK(short_.errors[0].key == "series.expire_after");
  CHECK(short_.errors[0].line == 3);
  CHECK(short_.errors[0].message.find("1h") != std::string::npos);
}

TEST_CASE("durations") {
  CHECK(parse_duration("90s") == 90'000);
  CHECK(parse_duration("1h30m") == 5'400'000);
  CHECK(parse_duration("250ms") == 250);
  CHECK(parse_duration("1d") == 86'400'000);
  CHECK_FALSE(parse_duration("5 minutes"));
  CHECK_FALSE(parse_duration("m"));
  CHECK_FALSE(parse_duration("99999999999999999999999s"));  // no exception, no overflow
  CHECK_FALSE(parse_duration("999999999999w"));              // 12 digits, but the product overflows
  CHECK_FALSE(parse_duration("999999999999h"));              // fits in 64 bits, over the cap
  CHECK(parse_duration("36525d") == kMaxDurationMs);
  CHECK_FALSE(parse_duration("36525d1ms"));
  CHECK(format_duration(5'400'000) == "1h30m");
  // In a config file: an error naming line and key, and the cap (the fuzzer's input).
  auto r = config_from_yaml("windows: {allowed_lateness: 999999999999w}\n", "f.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "windows.allowed_lateness");
  CHECK(r.errors[0].line == 1);
  CHECK(r.errors[0].message.find("at most 36525d") != std::string::npos);
}
}
