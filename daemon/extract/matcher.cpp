// All lexicon patterns in one Vectorscan (Hyperscan) database, scanned once per response.
#include <hs/hs.h>
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
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
  // Patterns that open with one rare byte (see rare_lead_byte), anchored and matched from each
  // occurrence of that byte instead of being part of `db`; empty when there are none.
  std::shared_ptr<Db> lead_db = std::make_shared<Db>();
  std::string lead_bytes;      // the distinct opening bytes of lead_db's patterns
  uint32_t lead_width = 0;     // the longest match of lead_db's patterns, in bytes
  // Every pattern in one database, as without the split: for a text with more than
  // kMaxAnchoredScans opening bytes (code full of `[`), where one scan costs less than many.
  std::shared_ptr<Db> whole_db = std::make_shared<Db>();
  static constexpr size_t kMaxAnchoredScans = 8;
  hs_scratch_t* scratch = nullptr;  // sized for every database above
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
  unsigned long long base = 0;  // offset of the scanned buffer in the text
  ~Impl() {
    if (scratch) hs_free_scratch(scratch);
  }
};

namespace {
constexpr unsigned kFlags = HS_FLAG_CASELESS;

int on_match(unsigned int id, unsigned long long, unsigned long long to, unsigned int, void* ctx) {
  auto* impl = static_cast<Matcher::Impl*>(ctx);
  impl->hits.push_back({id, impl->base + to});
  return 0;
}

// Code, where a match ending inside does not count. Fenced blocks as CommonMark has them: a line
// opening (after up to three spaces) with a run of at least three ` or ~, closed by a line of at
// least as many of the same character and nothing else, or by the end of the text; a backtick
// fence that no such line closes ends at the next run as long as its own, wherever it stands
// (models close fences sloppily). Code spans: a run of backticks closed by a run of exactly as
// many on the same line (``a ` b`` too); a run of three or more in mid-line runs to the next run
// of three or more, or to the end of the text, as a fence would. Indented code blocks are not
// recognised: models indent list items as often.
size_t run_of(std::string_view t, size_t i, char c) {
  size_t j = i;
  while (j < t.size() && t[j] == c) ++j;
  return j - i;
}
size_t line_end(std::string_view t, size_t i) {
  size_t e = t.find('\n', i);
  return e == std::string_view::npos ? t.size() : e;
}
// The fence run opening at line start `ls` (after up to three spaces), or {npos, 0}.
std::pair<size_t, size_t> fence_at(std::string_view t, size_t ls) {
  size_t i = ls;
  while (i < t.size() && i - ls < 3 && t[i] == ' ') ++i;
  if (i >= t.size() || (t[i] != '`' && t[i] != '~')) return {std::string_view::npos, 0};
  size_t n = run_of(t, i, t[i]);
  if (n < 3) return {std::string_view::npos, 0};
  // A backtick fence's info string holds no backtick (else the line is a code span).
  if (t[i] == '`' && t.substr(i + n, line_end(t, i) - i - n).find('`') != std::string_view::npos) return {std::string_view::npos, 0};
  return {i, n};
}

void code_ranges(std::string_view t, std::vector<std::pair<size_t, size_t>>& out) {
  constexpr size_t npos = std::string_view::npos;
  // Most responses have neither character: two searches, not two per line.
  if (!std::memchr(t.data(), '`', t.size()) && !std::memchr(t.data(), '~', t.size())) return;
  size_t i = 0;
  while (i < t.size()) {
    const bool line_start = i == 0 || t[i - 1] == '\n';
    if (line_start) {
      if (auto [f, n] = fence_at(t, i); f != npos) {
        const char c = t[f];
        size_t end = npos;
        for (size_t ls = line_end(t, f); ls < t.size() && end == npos; ls = line_end(t, ls + 1)) {
          auto [g, m] = fence_at(t, ls + 1);
          if (g == npos || t[g] != c || m < n) continue;
          size_t k = g + m;
          while (k < t.size() && (t[k] == ' ' || t[k] == '\t')) ++k;
          if (k == t.size() || t[k] == '\n') end = k;
        }
        if (end == npos && c == '`') {
          for (size_t k = t.find('`', f + n); k != npos && end == npos; k = t.find('`', k)) {
            size_t m = run_of(t, k, '`');
            if (m >= n) end = k + m;
            k += m;
          }
        }
        if (end == npos) end = t.size();
        out.emplace_back(i, end);
        i = end;
        continue;
      }
    }
    // The next backtick on this line (memchr within the line: a text without code costs a
    // search per line, not a call per byte as find_first_of would).
    const size_t le = line_end(t, i);
    const void* hit = std::memchr(t.data() + i, '`', le - i);
    if (!hit) {
      i = le + 1;
      continue;
    }
    const size_t b = size_t(static_cast<const char*>(hit) - t.data());
    size_t n = run_of(t, b, '`');
    // The closing run: exactly n backticks on this line; for three or more, any run of three or
    // more anywhere after, and none means the rest of the text (a fence opened mid-line).
    const bool wide = n >= 3;
    const size_t limit = wide ? t.size() : line_end(t, b);
    size_t e = npos, m = 0;
    for (size_t k = t.find('`', b + n); k != npos && k < limit; k = t.find('`', k + m)) {
      m = run_of(t, k, '`');
      if (wide ? m >= 3 : m == n) {
        e = k;
        break;
      }
    }
    if (e == npos && !wide) {
      i = b + n;
      continue;
    }
    const size_t end = e == npos ? t.size() : e + m;
    out.emplace_back(b, end);
    i = end;
  }
}

// A pattern whose every match starts with one punctuation byte and that gives Vectorscan no
// longer literal to look for than that byte and a class (`bracket_ref`: `\[` then a group
// opening with `[1-9]`) pulls its literal matcher onto one- and two-byte fingerprints, which
// slows the scan of every pattern in the database (bench/README). Such a pattern is matched
// from each occurrence of its opening byte instead. Returns that byte, or 0: the pattern must
// open with an escaped punctuation byte followed by a group or class and have no top-level `|`.
// The balance check here is only an early exit: the constructor validates the pattern alone
// with hs_expression_info before wrapping it in `^(?:...)`, so a broken one is never "fixed" by
// the wrapping and is reported as itself.
char rare_lead_byte(const std::string& re) {
  if (re.size() < 3 || re[0] != '\\' || !std::ispunct(static_cast<unsigned char>(re[1])) || (re[2] != '(' && re[2] != '['))
    return 0;
  int depth = 0;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      ++i;
    } else if (c == '[') {  // a class: `]` right after `[` or `[^` is a member
      size_t j = i + 1;
      if (j < re.size() && re[j] == '^') ++j;
      if (j < re.size() && re[j] == ']') ++j;
      while (j < re.size() && re[j] != ']') j += re[j] == '\\' ? 2 : 1;
      if (j >= re.size()) return 0;
      i = j;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return 0;
    } else if (c == '|' && depth == 0) {
      return 0;
    }
  }
  return depth == 0 ? re[1] : 0;
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
// full on load: no hash collision can hand back the wrong database), then each database as its
// length and hs_serialize_database output. Written to a temporary name and renamed, so readers
// never see half a file.
constexpr std::string_view kCacheMagic = "guardwatch-hs-cache 2\n";

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Fills `dbs` (all of them or none) from the cache file.
bool cache_load(const std::string& file, const std::string& key, std::vector<hs_database_t*>& dbs) {
  std::ifstream f(file, std::ios::binary);
  if (!f) return false;
  std::string data((std::istreambuf_iterator<char>(f)), {});
  size_t pos = kCacheMagic.size() + 8;
  if (data.size() < pos || data.compare(0, kCacheMagic.size(), kCacheMagic) != 0) return false;
  uint64_t klen = 0;
  std::memcpy(&klen, data.data() + kCacheMagic.size(), 8);
  if (klen > data.size() - pos || data.compare(pos, klen, key) != 0) return false;
  pos += klen;
  for (auto& db : dbs) {
    uint64_t len = 0;
    if (data.size() - pos < 8) break;
    std::memcpy(&len, data.data() + pos, 8);
    pos += 8;
    if (len > data.size() - pos || hs_deserialize_database(data.data() + pos, len, &db) != HS_SUCCESS) break;
    pos += len;
  }
  if (pos == data.size() && std::all_of(dbs.begin(), dbs.end(), [](auto* d) { return d != nullptr; })) return true;
  for (auto& db : dbs) {
    if (db) hs_free_database(db);
    db = nullptr;
  }
  return false;
}

void cache_store(const std::string& dir, const std::string& file, const std::string& key, const std::vector<hs_database_t*>& dbs) {
  std::string out(kCacheMagic);
  uint64_t klen = key.size();
  out.append(reinterpret_cast<const char*>(&klen), 8);
  out += key;
  for (auto* db : dbs) {
    char* bytes = nullptr;
    size_t len = 0;
    if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return;
    uint64_t l = len;
    out.append(reinterpret_cast<const char*>(&l), 8);
    out.append(bytes, len);
    std::free(bytes);
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string tmp = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(out.data(), std::streamsize(out.size()));
    if (!f) ec = std::make_error_code(std::errc::io_error);
  }
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

Matcher::Matcher(std::vector<LexiconSpec> lexicons, const std::string& cache_dir, bool split_lead_bytes)
    : impl_(std::make_unique<Impl>()) {
  for (auto& lex : lexicons)
    for (auto& p : lex.patterns) {
      Pattern q = p;
      q.group = lex.metric;
      patterns_.push_back(q);
      impl_->pattern_opts.push_back({lex.scan_first_chars, lex.ignore_code});
    }
  // The sets: `shared` for one scan of the whole text, where a lexicon's scan limit becomes
  // each of its patterns' maximum match end offset (HS_EXT_FLAG_MAX_OFFSET), so one scan
  // serves all lexicons; `lead`, the patterns with a rare opening byte and a bounded width,
  // anchored (the limit is checked on each match); and when `lead` is not empty, `whole`, every
  // pattern as in `shared`, for texts with too many opening bytes.
  struct Set {
    std::vector<std::string> exprs;
    std::vector<unsigned> flags, ids;
    std::vector<hs_expr_ext_t> ext;
  } shared, lead, whole;
  for (size_t i = 0; i < patterns_.size(); ++i) {
    const std::string& re = patterns_[i].regex;
    // Without code exclusion the first match is all we need.
    unsigned fl = kFlags | (impl_->pattern_opts[i].ignore_code ? 0u : unsigned(HS_FLAG_SINGLEMATCH));
    // The limit counts characters; Vectorscan counts bytes. A UTF-8 character takes at most 4,
    // so no match ending past 4 bytes per character can count; scan() checks the rest.
    hs_expr_ext_t limit{};
    if (uint32_t l = impl_->pattern_opts[i].limit) {
      limit.flags = HS_EXT_FLAG_MAX_OFFSET;
      limit.max_offset = 4ull * l;
    }
    auto add = [&](Set& set, std::string expr, const hs_expr_ext_t& ext) {
      set.exprs.push_back(std::move(expr));
      set.flags.push_back(fl);
      set.ids.push_back(unsigned(i));
      set.ext.push_back(ext);
    };
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* err = nullptr;
    char lead_byte = split_lead_bytes ? rare_lead_byte(re) : 0;
    if (lead_byte && hs_expression_info(re.c_str(), fl, &info, &err) == HS_SUCCESS && info->max_width != UINT_MAX &&
        info->min_width > 0) {
      add(lead, "^(?:" + re + ")", hs_expr_ext_t{});
      impl_->lead_width = std::max(impl_->lead_width, info->max_width);
      if (impl_->lead_bytes.find(lead_byte) == std::string::npos) impl_->lead_bytes += lead_byte;
    } else {
      add(shared, re, limit);
    }
    add(whole, re, limit);
    std::free(info);
    if (err) hs_free_compile_error(err);
  }
  if (lead.exprs.empty()) whole = Set{};  // then `shared` is the whole set
  std::vector<Set*> sets;  // the non-empty ones (Vectorscan compiles no empty database)
  for (auto* set : {&shared, &lead, &whole})
    if (!set->exprs.empty()) sets.push_back(set);
  std::vector<hs_database_t*> dbs(sets.size(), nullptr);
  std::string key, file;
  if (!cache_dir.empty()) {
    key = std::string("vectorscan ") + hs_version() + "\n";
    for (auto* set : sets) {
      key += "database " + std::to_string(set->exprs.size()) + "\n";
      for (size_t k = 0; k < set->exprs.size(); ++k)
        key += std::to_string(set->ids[k]) + " " + std::to_string(set->flags[k]) + " " + std::to_string(set->ext[k].flags) + " " +
               std::to_string(set->ext[k].max_offset) + " " + std::to_string(set->exprs[k].size()) + " " + set->exprs[k] + "\n";
    }
    char name[40];
    std::snprintf(name, sizeof name, "/hs-%016llx.db", static_cast<unsigned long long>(fnv1a(key)));
    file = cache_dir + name;
    from_cache_ = cache_load(file, key, dbs);
  }
  if (!from_cache_) {
    for (size_t d = 0; d < sets.size(); ++d) {
      Set& set = *sets[d];
      std::vector<const char*> exprs;
      std::vector<const hs_expr_ext_t*> ext_ptrs;
      for (size_t k = 0; k < set.exprs.size(); ++k) {
        exprs.push_back(set.exprs[k].c_str());
        ext_ptrs.push_back(&set.ext[k]);
      }
      hs_compile_error_t* err = nullptr;
      if (hs_compile_ext_multi(exprs.data(), set.flags.data(), set.ids.data(), ext_ptrs.data(), unsigned(exprs.size()), HS_MODE_BLOCK,
                               nullptr, &dbs[d], &err) != HS_SUCCESS) {
        std::string msg = err && err->message ? err->message : "compile error";
        int bad = err ? err->expression : -1;
        hs_free_compile_error(err);
        for (auto* db : dbs)
          if (db) hs_free_database(db);
        if (bad < 0) throw MatcherError({"", 0, 0, "", msg});
        const Pattern& p = patterns_[set.ids[size_t(bad)]];
        ConfigError where = p.where;
        where.message = "pattern \"" + p.name + "\": " + msg;
        throw MatcherError(where);
      }
    }
  }
  for (size_t d = 0; d < sets.size(); ++d)
    (sets[d] == &shared ? impl_->db : sets[d] == &lead ? impl_->lead_db : impl_->whole_db)->db = dbs[d];
  for (auto* db : dbs)
    if (hs_alloc_scratch(db, &impl_->scratch) != HS_SUCCESS) throw std::runtime_error("hs_alloc_scratch failed");
  if (!from_cache_ && !file.empty()) cache_store(cache_dir, file, key, dbs);
}

Matcher::~Matcher() = default;

Matcher::Matcher() : impl_(std::make_unique<Impl>()) {}

std::unique_ptr<Matcher> Matcher::fork() const {
  std::unique_ptr<Matcher> m(new Matcher());
  m->patterns_ = patterns_;
  m->impl_->db = impl_->db;
  m->impl_->lead_db = impl_->lead_db;
  m->impl_->whole_db = impl_->whole_db;
  m->impl_->lead_bytes = impl_->lead_bytes;
  m->impl_->lead_width = impl_->lead_width;
  m->impl_->pattern_opts = impl_->pattern_opts;
  if (impl_->scratch && hs_clone_scratch(impl_->scratch, &m->impl_->scratch) != HS_SUCCESS)
    throw std::runtime_error("hs_clone_scratch failed");
  return m;
}

void Matcher::scan(std::string_view text, std::vector<uint32_t>& out) {
  if (text.empty()) return;
  impl_->hits.clear();
  impl_->base = 0;
  // Where the anchored patterns would start: each occurrence of an opening byte, up to one more
  // than the anchored scans worth making.
  constexpr size_t kMax = Impl::kMaxAnchoredScans;
  size_t at[kMax + 1];
  size_t n = 0;
  for (char c : impl_->lead_bytes) {
    for (const char* p = text.data(); n <= kMax && (p = static_cast<const char*>(std::memchr(p, c, text.size() - size_t(p - text.data()))));
         ++p)
      at[n++] = size_t(p - text.data());
  }
  if (n > kMax) {
    hs_scan(impl_->whole_db->db, text.data(), unsigned(text.size()), 0, impl_->scratch, on_match, impl_.get());
  } else {
    if (impl_->db->db) hs_scan(impl_->db->db, text.data(), unsigned(text.size()), 0, impl_->scratch, on_match, impl_.get());
    // The anchored patterns, from each occurrence of their opening byte, over their widest match.
    for (size_t i = 0; i < n; ++i) {
      impl_->base = at[i];
      hs_scan(impl_->lead_db->db, text.data() + at[i], unsigned(std::min<size_t>(text.size() - at[i], impl_->lead_width)), 0,
              impl_->scratch, on_match, impl_.get());
    }
  }
  if (impl_->hits.empty()) return;
  std::vector<std::pair<size_t, size_t>> code;
  bool code_done = false;
  size_t first = out.size();
  for (auto& h : impl_->hits) {
    auto& o = impl_->pattern_opts[h.id];
    // A lexicon's limit is in characters: a match ending within that many bytes is inside it;
    // one ending later is when the text before its end has no more characters than that.
    if (o.limit && h.end > o.limit && (h.end > 4ull * o.limit || utf8_length(text.substr(0, size_t(h.end))) > o.limit)) continue;
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
