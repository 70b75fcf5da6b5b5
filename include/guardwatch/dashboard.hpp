// The Grafana dashboard, generated from the metric registry and the rule files so a new
// guardrail shows up without hand-editing JSON (`guardwatch dashboard --rules ...`).
#pragma once
#include <nlohmann/json.hpp>

#include "guardwatch/metrics.hpp"
#include "guardwatch/rules.hpp"

namespace gw {
nlohmann::json grafana_dashboard(const MetricRegistry& metrics, const RuleSet& rules);
}
