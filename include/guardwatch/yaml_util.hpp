// yaml-cpp 0.7 throws when the type of a missing key is asked (`n["x"].IsMap()` on an absent
// "x"); these ask IsDefined() first, so absent keys read as "not a map/scalar/list".
#pragma once
#include <yaml-cpp/yaml.h>

namespace gw::yaml {
inline bool is_map(const YAML::Node& n) { return n.IsDefined() && n.IsMap(); }
inline bool is_seq(const YAML::Node& n) { return n.IsDefined() && n.IsSequence(); }
inline bool is_scalar(const YAML::Node& n) { return n.IsDefined() && n.IsScalar(); }
inline bool is_null(const YAML::Node& n) { return n.IsDefined() && n.IsNull(); }
}  // namespace gw::yaml
