// All lexicon patterns in one Vectorscan (Hyperscan) database, scanned once per response.
#include <hs/hs.h>
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "guardwatch/extract.hpp"
#include "guardwatch/log.hpp"

namespace gw {

struct Matcher::Impl {
  // The one database of every pattern (scan limits are match offsets), compiled or loaded once
  // at start and shared read-only by forks (one per thread); scratch space and hits are per fork.
  struct Db {
    hs_database_t* db = nullptr;
    ~Db() {
      if (db) hs_free_database(db);
    }
  };
  std::shared_ptr<Db> db = std::make_shared<Db>();
  hs_scratch_t* scratch = nullptr;
  struct GroupOpts {
    uint32_t limit = 0;
    bool ignore_code = false;
  };
  std::vector<GroupOpts> pattern_opts;  // per pattern id
  struct Hit {
    uint32_t id;
    unsigned long long end;
  };
  std::vector<Hit> hits;
  ~Impl() {
    if (scratch) hs_free_scratch(scratch);
  }
};

namespace {
constexpr unsigned kFlags = HS_FLAG_CASELESS;

int on_match(unsigned int id, unsigned long long, unsigned long long to, unsigned int, void* ctx) {
  auto* impl = static_cast<Matcher::Impl*>(ctx);
  impl->hits.push_back({id, to});
  return 0;
}

// Code spans: ``` fenced blocks and `inline` spans. A match ending inside one does not count.
void code_ranges(std::string_view t, std::vector<std::pair<size_t, size_t>>& out) {
  size_t i = 0;
  while (i < t.size()) {
    size_t b = t.find('`', i);
    if (b == std::string_view::npos) break;
    if (t.compare(b, 3, "```") == 0) {
      size_t e = t.find("```", b + 3);
      size_t end = e == std::string_view::npos ? t.size() : e + 3;
      out.emplace_back(b, end);
      i = end;
    } else {
      size_t e = t.find('`', b + 1);
      size_t nl = t.find('\n', b + 1);
      if (e == std::string_view::npos || (nl != std::string_view::npos && nl < e)) {
        i = b + 1;
        continue;
      }
      out.emplace_back(b, e + 1);
      i = e + 1;
    }
  }
}
}  // namespace

std::string Matcher::check_regex(const std::string& regex) {
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile(regex.c_str(), kFlags, HS_MODE_BLOCK, nullptr, &db, &err) != HS_SUCCESS) {
    std::string msg = err && err->message ? err->message : "invalid pattern";
    hs_free_compile_error(err);
    return msg;
  }
  hs_free_database(db);
  return "";
}

namespace {
// The cache file: magic, the key's length and the key (every input of the compile, compared in
// full on load: no hash collision can hand back the wrong database), then hs_serialize_database
// output. Written to a temporary name and renamed, so readers never see half a file.
constexpr std::string_view kCacheMagic = "guardwatch-hs-cache 1\n";

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

hs_database_t* cache_load(const std::string& file, const std::string& key) {
  std::ifstream f(file, std::ios::binary);
  if (!f) return nullptr;
  std::string data((std::istreambuf_iterator<char>(f)), {});
  size_t head = kCacheMagic.size() + 8;
  if (data.size() < head || data.compare(0, kCacheMagic.size(), kCacheMagic) != 0) return nullptr;
  uint64_t klen = 0;
  std::memcpy(&klen, data.data() + kCacheMagic.size(), 8);
  if (klen > data.size() - head || data.compare(head, klen, key) != 0) return nullptr;
  hs_database_t* db = nullptr;
  if (hs_deserialize_database(data.data() + head + klen, data.size() - head - klen, &db) != HS_SUCCESS) return nullptr;
  return db;
}

void cache_store(const std::string& dir, const std::string& file, const std::string& key, const hs_database_t* db) {
  char* bytes = nullptr;
  size_t len = 0;
  if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string tmp = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    uint64_t klen = key.size();
    f.write(kCacheMagic.data(), std::streamsize(kCacheMagic.size()));
    f.write(reinterpret_cast<const char*>(&klen), 8);
    f.write(key.data(), std::streamsize(key.size()));
    f.write(bytes, std::streamsize(len));
    if (!f) ec = std::make_error_code(std::errc::io_error);
  }
  std::free(bytes);
  if (!ec) std::filesystem::rename(tmp, file, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    log::debug("pattern cache: cannot write {}", file);
  }
}
}  // namespace

std::string Matcher::resolve_cache_dir(const std::string& setting) {
  if (setting == "off" || setting.empty()) return "";
  if (setting != "auto") return setting;
  auto env = [](const char* k) -> std::string {
    const char* v = std::getenv(k);
    return v && *v ? v : "";
  };
  if (std::string d = env("CACHE_DIRECTORY"); !d.empty()) return d.substr(0, d.find(':'));
  if (std::string d = env("XDG_CACHE_HOME"); !d.empty()) return d + "/guardwatch";
  if (std::string d = env("HOME"); !d.empty()) return d + "/.cache/guardwatch";
  return "";
}

Matcher::Matcher(std::vector<LexiconSpec> lexicons, const std::string& cache_dir) : impl_(std::make_unique<Impl>()) {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
  for (auto& lex : lexicons)
    for (auto& p : lex.patterns) {
      Pattern q = p;
      q.group = lex.metric;
      patterns_.push_back(q);
      impl_->pattern_opts.push_back({lex.scan_first_chars, lex.ignore_code});
    }
  // One database for every pattern: a lexicon's scan limit becomes each of its patterns'
  // maximum match end offset (HS_EXT_FLAG_MAX_OFFSET), so one scan serves all lexicons.
  std::vector<hs_expr_ext_t> ext(patterns_.size());
  std::vector<const hs_expr_ext_t*> ext_ptrs;
  for (size_t i = 0; i < patterns_.size(); ++i) {
    exprs.push_back(patterns_[i].regex.c_str());
    // Without code exclusion the first match is all we need.
    flags.push_back(kFlags | (impl_->pattern_opts[i].ignore_code ? 0u : unsigned(HS_FLAG_SINGLEMATCH)));
    ids.push_back(unsigned(i));
    ext[i] = hs_expr_ext_t{};
    if (uint32_t limit = impl_->pattern_opts[i].limit) {
      ext[i].flags = HS_EXT_FLAG_MAX_OFFSET;
      ext[i].max_offset = limit;
    }
    ext_ptrs.push_back(&ext[i]);
  }
  std::string key, file;
  if (!cache_dir.empty()) {
    key = std::string("vectorscan ") + hs_version() + "\n";
    for (size_t i = 0; i < patterns_.size(); ++i)
      key += std::to_string(flags[i]) + " " + std::to_string(ext[i].flags) + " " + std::to_string(ext[i].max_offset) + " " +
             std::to_string(patterns_[i].regex.size()) + " " + patterns_[i].regex + "\n";
    char name[40];
    std::snprintf(name, sizeof name, "/hs-%016llx.db", static_cast<unsigned long long>(fnv1a(key)));
    file = cache_dir + name;
    if (hs_database_t* cached = cache_load(file, key)) {
      impl_->db->db = cached;
      if (hs_alloc_scratch(cached, &impl_->scratch) != HS_SUCCESS) throw std::runtime_error("hs_alloc_scratch failed");
      from_cache_ = true;
      return;
    }
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_ext_multi(exprs.data(), flags.data(), ids.data(), ext_ptrs.data(), unsigned(exprs.size()), HS_MODE_BLOCK, nullptr,
                           &db, &err) != HS_SUCCESS) {
    std::string msg = err && err->message ? err->message : "compile error";
    int bad = err ? err->expression : -1;
    hs_free_compile_error(err);
    if (bad < 0) throw MatcherError({"", 0, 0, "", msg});
    const Pattern& p = patterns_[ids[size_t(bad)]];
    ConfigError where = p.where;
    where.message = "pattern \"" + p.name + "\": " + msg;
    throw MatcherError(where);
  }
  impl_->db->db = db;
  if (hs_alloc_scratch(db, &impl_->scratch) != HS_SUCCESS) throw std::runtime_error("hs_alloc_scratch failed");
  if (!file.empty()) cache_store(cache_dir, file, key, db);
}

Matcher::~Matcher() = default;

Matcher::Matcher() : impl_(std::make_unique<Impl>()) {}

std::unique_ptr<Matcher> Matcher::fork() const {
  std::unique_ptr<Matcher> m(new Matcher());
  m->patterns_ = patterns_;
  m->impl_->db = impl_->db;
  m->impl_->pattern_opts = impl_->pattern_opts;
  if (impl_->scratch && hs_clone_scratch(impl_->scratch, &m->impl_->scratch) != HS_SUCCESS)
    throw std::runtime_error("hs_clone_scratch failed");
  return m;
}

void Matcher::scan(std::string_view text, std::vector<uint32_t>& out) {
  if (text.empty() || !impl_->db->db) return;
  impl_->hits.clear();
  hs_scan(impl_->db->db, text.data(), unsigned(text.size()), 0, impl_->scratch, on_match, impl_.get());
  if (impl_->hits.empty()) return;
  std::vector<std::pair<size_t, size_t>> code;
  bool code_done = false;
  size_t first = out.size();
  for (auto& h : impl_->hits) {
    auto& o = impl_->pattern_opts[h.id];
    if (o.ignore_code) {
      if (!code_done) {
        code_ranges(text, code);
        code_done = true;
      }
      bool inside = false;
      for (auto& [b, e] : code) inside |= h.end > b && h.end <= e;
      if (inside) continue;
    }
    if (std::find(out.begin() + long(first), out.end(), h.id) == out.end()) out.push_back(h.id);
  }
}

std::vector<ConfigError> load_lexicon(const std::string& path, uint16_t metric, LexiconSpec& out) {
  std::vector<ConfigError> errs;
  auto err = [&](const YAML::Node& n, std::string key, std::string msg) {
    ConfigError e{path, 0, 0, std::move(key), std::move(msg)};
    if (n.IsDefined() && !n.Mark().is_null()) {
      e.line = n.Mark().line + 1;
      e.column = n.Mark().column + 1;
    }
    errs.push_back(std::move(e));
  };
  out.metric = metric;
  YAML::Node root;
  try {
    std::ifstream f(path);
    if (!f) {
      errs.push_back({path, 0, 0, "", "cannot read the lexicon file"});
      return errs;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    root = YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    errs.push_back({path, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
    return errs;
  }
  const YAML::Node& r = root;
  if (!gw::yaml::is_map(r)) {
    err(r, "", "a lexicon is a mapping with a `patterns` list");
    return errs;
  }
  for (auto it = r.begin(); it != r.end(); ++it) {
    std::string k = it->first.Scalar();
    if (k != "patterns" && k != "scan_first_chars" && k != "ignore_code" && k != "description")
      err(it->first, k, "unknown key; known: description, scan_first_chars, ignore_code, patterns");
  }
  try {
    if (r["scan_first_chars"].IsDefined()) out.scan_first_chars = r["scan_first_chars"].as<uint32_t>();
  } catch (const YAML::Exception&) {
    err(r["scan_first_chars"], "scan_first_chars", "expected a whole number of characters (0 = whole response)");
  }
  try {
    if (r["ignore_code"].IsDefined()) out.ignore_code = r["ignore_code"].as<bool>();
  } catch (const YAML::Exception&) {
    err(r["ignore_code"], "ignore_code", "expected true or false");
  }
  const YAML::Node& pats = r["patterns"];
  if (!gw::yaml::is_seq(pats)) {
    err(pats.IsDefined() ? pats : r, "patterns", "expected a list of {name, regex}");
    return errs;
  }
  for (size_t i = 0; i < pats.size(); ++i) {
    const YAML::Node& p = pats[i];
    std::string key = "patterns[" + std::to_string(i) + "]";
    if (!gw::yaml::is_map(p) || !gw::yaml::is_scalar(p["name"]) || !gw::yaml::is_scalar(p["regex"])) {
      err(p, key, "expected {name: NAME, regex: REGEX}");
      continue;
    }
    // Regexes are checked when the matcher compiles them all at once (one compile is much
    // cheaper than one per pattern); `where` lets that error name this file and line.
    Pattern pat{p["name"].Scalar(), p["regex"].Scalar(), metric, {path, p["regex"].Mark().line + 1, p["regex"].Mark().column + 1, key + ".regex", ""}};
    out.patterns.push_back(std::move(pat));
  }
  return errs;
}

}  // namespace gw
