#include "guardwatch/dashboard.hpp"

#include <fmt/format.h>

namespace gw {

using nlohmann::json;

namespace {

struct Layout {
  int id = 1, y = 0, x = 0;
  json panels = json::array();
  void row(const std::string& title) {
    if (x) {
      y += 8;
      x = 0;
    }
    panels.push_back({{"type", "row"}, {"title", title}, {"id", id++}, {"collapsed", false}, {"gridPos", {{"h", 1}, {"w", 24}, {"x", 0}, {"y", y}}}, {"panels", json::array()}});
    y += 1;
  }
  void add(json p, int w = 12, int h = 8) {
    if (x + w > 24) {
      x = 0;
      y += h;
    }
    p["id"] = id++;
    p["gridPos"] = {{"h", h}, {"w", w}, {"x", x}, {"y", y}};
    p["datasource"] = {{"type", "prometheus"}, {"uid", "${datasource}"}};
    panels.push_back(p);
    x += w;
    if (x >= 24) {
      x = 0;
      y += h;
    }
  }
};

json target(const std::string& expr, const std::string& legend, const char* ref = "A") {
  return {{"expr", expr}, {"legendFormat", legend}, {"refId", ref}, {"datasource", {{"type", "prometheus"}, {"uid", "${datasource}"}}}};
}

json timeseries(const std::string& title, std::vector<json> targets, const std::string& unit, const std::string& desc = "") {
  return {{"type", "timeseries"},
          {"title", title},
          {"description", desc},
          {"targets", targets},
          {"fieldConfig", {{"defaults", {{"unit", unit}, {"custom", {{"lineWidth", 1}, {"fillOpacity", 5}}}}}, {"overrides", json::array()}}},
          {"options", {{"legend", {{"displayMode", "list"}, {"placement", "bottom"}}}, {"tooltip", {{"mode", "multi"}}}}}};
}

const std::string kSel = R"(model=~"$model", endpoint=~"$endpoint")";
const std::string kWin = R"(window="$window")";

std::string unit_of(const MetricDef& d) {
  if (d.kind == MetricKind::kProportion) return "percentunit";
  if (d.unit == "seconds") return "s";
  if (d.unit == "usd") return "currencyUSD";
  return "short";
}

std::string series_expr(const MetricDef& d, const std::string& extra = "") {
  std::string sel = "{" + kSel + ", " + kWin + (extra.empty() ? "" : ", " + extra) + "}";
  if (d.kind == MetricKind::kProportion) return "guardwatch_" + d.prom_name + sel;
  return "guardwatch_" + d.prom_name + "_sum" + sel + " / guardwatch_" + d.prom_name + "_count" + sel;
}

}  // namespace

json grafana_dashboard(const MetricRegistry& metrics, const RuleSet& rules) {
  Layout L;
  const std::string legend = "{{model}} {{model_version}} {{endpoint}} {{variant}}";
  L.row("Traffic and input health");
  L.add(timeseries("Records in window by model, version, endpoint",
                   {target("sum by (model, model_version, endpoint, variant) (guardwatch_window_records{" + kSel + ", " + kWin + "})", legend)},
                   "short", "Records applied per series in the selected window."));
  L.add(timeseries("Records read per second by outcome",
                   {target("sum by (outcome) (rate(guardwatch_records_total[2m]))", "{{outcome}}")}, "reqps",
                   "applied, late, and every malformed-record reason (invalid_json, bad_timestamp, wrong_type, ...)."));
  L.add(timeseries("Malformed-record ratio",
                   {target("sum(rate(guardwatch_records_total{outcome!=\"applied\"}[2m])) / clamp_min(sum(rate(guardwatch_records_total[2m])), 1e-9)", "malformed")},
                   "percentunit"));
  L.add(timeseries("Kafka consumer lag", {target("sum by (topic, partition) (guardwatch_kafka_consumer_lag_messages)", "{{topic}}/{{partition}}")}, "short"));

  L.row("Quality guardrails (proportions)");
  for (int m : {kRefusal, kCitation, kTruncated, kError, kEmpty, kContentFiltered})
    L.add(timeseries(metrics[size_t(m)].help.substr(0, metrics[size_t(m)].help.find('.')) + " — " + metrics[size_t(m)].name,
                     {target(series_expr(metrics[size_t(m)]), legend)}, "percentunit"),
          8);

  L.row("Latency");
  for (int m : {kLatency, kTtft}) {
    const MetricDef& d = metrics[size_t(m)];
    std::vector<json> ts;
    const char* refs[] = {"A", "B", "C"};
    int i = 0;
    for (const char* q : {"0.5", "0.95", "0.99"})
      ts.push_back(target("guardwatch_" + d.prom_name + "{" + kSel + ", " + kWin + ", quantile=\"" + q + "\"}", std::string("p") + (q + 2) + " " + legend, refs[i++]));
    L.add(timeseries(d.name + " quantiles", ts, "s"));
  }
  L.row("Length and cost");
  for (int m : {kResponseChars, kCompletionTokensMetric, kCost, kTokensPerSecond}) {
    const MetricDef& d = metrics[size_t(m)];
    L.add(timeseries(d.name + " (window mean)", {target(series_expr(d), legend)}, unit_of(d)), 6);
  }
  L.add(timeseries("Cost in window", {target("sum by (model, endpoint) (guardwatch_window_cost_usd{" + kSel + ", " + kWin + "})", "{{model}} {{endpoint}}")},
                   "currencyUSD"));
  L.row("Candidate vs control");
  for (int m : {kRefusal, kCitation, kResponseChars}) {
    const MetricDef& d = metrics[size_t(m)];
    L.add(timeseries(d.name + ": candidate vs control",
                     {target(series_expr(d, "variant=\"candidate\""), "candidate {{model}} {{endpoint}}", "A"),
                      target(series_expr(d, "variant=\"control\""), "control {{model}} {{endpoint}}", "B")},
                     unit_of(d)),
          8);
  }
  L.add(timeseries("p95 latency: candidate vs control",
                   {target("guardwatch_request_latency_seconds{" + kSel + ", " + kWin + ", quantile=\"0.95\", variant=\"candidate\"}", "candidate {{model}}", "A"),
                    target("guardwatch_request_latency_seconds{" + kSel + ", " + kWin + ", quantile=\"0.95\", variant=\"control\"}", "control {{model}}", "B")},
                   "s"),
        8);

  L.row("Alerts");
  json table = {{"type", "table"},
                {"title", "Active alerts (2 = firing, 1 = pending) with their effect"},
                {"targets",
                 {{{"expr", "guardwatch_alert_state"}, {"format", "table"}, {"instant", true}, {"refId", "A"}, {"datasource", {{"type", "prometheus"}, {"uid", "${datasource}"}}}},
                  {{"expr", "guardwatch_alert_effect"}, {"format", "table"}, {"instant", true}, {"refId", "B"}, {"datasource", {{"type", "prometheus"}, {"uid", "${datasource}"}}}}}},
                {"transformations", {{{"id", "merge"}, {"options", json::object()}}}}};
  L.add(table, 24);

  // One row per rule group; per rule its own comparison (current vs baseline) and its state.
  for (auto& g : rules.groups) {
    L.row("Rules: " + g.name);
    for (auto& r : g.rules) {
      const MetricDef& d = metrics[size_t(r.cond.metric)];
      std::string sel = "{alertname=\"" + r.alert + "\", group=\"" + g.name + "\"}";
      std::string by_legend;
      for (auto& b : g.by) by_legend += "{{" + b + "}} ";
      std::string desc = fmt::format("{} on {}: current {} vs baseline {}{}.", r.alert, r.cond.metric_name, format_duration(r.current.window_ms),
                                     format_duration(r.baseline.window_ms),
                                     r.baseline.offset_ms ? " offset " + format_duration(r.baseline.offset_ms) : std::string(" (cohort)"));
      L.add(timeseries(r.alert,
                       {target("guardwatch_rule_current_value" + sel, "current " + by_legend, "A"),
                        target("guardwatch_rule_baseline_value" + sel, "baseline " + by_legend, "B"),
                        target("max by (alertname) (guardwatch_alert_state{alertname=\"" + r.alert + "\"}) or on() vector(0)", "alert state", "C")},
                       r.cond.test.kind == TestKind::kQuantileShift ? unit_of(d) : unit_of(d), desc),
            8);
    }
  }

  json vars = json::array();
  vars.push_back({{"name", "datasource"}, {"type", "datasource"}, {"query", "prometheus"}, {"label", "Prometheus"}});
  auto qvar = [](const char* name, const char* q) {
    return json{{"name", name},
                {"type", "query"},
                {"datasource", {{"type", "prometheus"}, {"uid", "${datasource}"}}},
                {"query", {{"query", q}, {"refId", std::string(name) + "-var"}}},
                {"definition", q},
                {"includeAll", true},
                {"allValue", ".*"},
                {"multi", true},
                {"refresh", 2},
                {"current", {{"text", "All"}, {"value", "$__all"}}}};
  };
  vars.push_back(qvar("model", "label_values(guardwatch_window_records, model)"));
  vars.push_back(qvar("endpoint", "label_values(guardwatch_window_records, endpoint)"));
  vars.push_back({{"name", "window"},
                  {"type", "custom"},
                  {"query", "1m,5m,15m,1h"},
                  {"current", {{"text", "5m"}, {"value", "5m"}}},
                  {"options", json::array()}});
  return {{"title", "guardwatch: LLM guardrails"},
          {"uid", "guardwatch"},
          {"tags", {"guardwatch", "llm"}},
          {"timezone", "utc"},
          {"schemaVersion", 39},
          {"version", 1},
          {"refresh", "30s"},
          {"time", {{"from", "now-3h"}, {"to", "now"}}},
          {"description", "Generated by `guardwatch dashboard --rules rules/`; do not edit by hand."},
          {"templating", {{"list", vars}}},
          {"panels", L.panels}};
}

}  // namespace gw
