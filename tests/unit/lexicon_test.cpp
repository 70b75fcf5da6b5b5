#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "guardwatch/decode.hpp"
#include "guardwatch/engine.hpp"
#include "guardwatch/extract.hpp"
#include "guardwatch/generate.hpp"
#include "helpers.hpp"

using namespace gw;

namespace {
struct Lex {
  Config cfg = gwtest::default_config();
  std::unique_ptr<Matcher> m;
  Lex() {
    std::vector<ConfigError> errs;
    m = build_matcher(cfg, errs);
    REQUIRE(errs.empty());
    REQUIRE(m);
  }
  bool has(std::string_view text, uint16_t group) {
    std::vector<uint32_t> hits;
    m->scan(text, hits);
    for (auto id : hits)
      if (m->pattern(id).group == group) return true;
    return false;
  }
  bool refusal(std::string_view t) { return has(t, kRefusal); }
  std::vector<uint32_t> sorted_hits(Matcher& m, std::string_view t) {
    std::vector<uint32_t> h;
    m.scan(t, h);
    std::sort(h.begin(), h.end());
    return h;
  }
  bool citation(std::string_view t) { return has(t, kCitation); }
};
Lex& lex() {
  static Lex l;
  return l;
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("lexicon: English refusals of current models") {
  const char* yes[] = {
      "I can't help with that.",
      "I cannot help with that request.",
      "Sorry, I can't assist with that.",
      "I’m sorry, but I can’t help with this.",
      "I'm sorry, but I cannot provide instructions for making weapons.",
      "I'm not able to help with that.",
      "I am unable to provide that information.",
      "As an AI language model, I cannot browse the internet.",
      "As an AI, I don't have personal opinions, and I can't take sides.",
      "I must decline this request.",
      "I have to respectfully decline.",
      "I apologize, but I won't be able to do that.",
      "I won't help with creating malware.",
      "I'm not comfortable helping with that.",
      "This request violates our usage policies.",
      "I can’t assist.",
  };
  for (auto t : yes) {
    CAPTURE(t);
    CHECK(lex().refusal(t));
  }
}

TEST_CASE("lexicon: refusals in German, French, Spanish, Portuguese, Italian, Chinese, Japanese") {
  const char* yes[] = {
      "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
      "Ich muss diese Anfrage leider ablehnen.",
      "Je suis désolé, mais je ne peux pas vous aider avec cela.",
      "Je ne peux pas répondre à cette demande.",
      "Lo siento, pero no puedo ayudarte con eso.",
      "No puedo proporcionar esa información.",
      "Desculpe, mas não posso ajudar com isso.",
      "Mi dispiace, ma non posso aiutarti con questa richiesta.",
      "抱歉，我无法帮助你完成这个请求。",
      "我不能提供这方面的信息。",
      "申し訳ありませんが、そのご依頼にはお応えできません。",
      "そのリクエストにはお手伝いできません。",
  };
  for (auto t : yes) {
    CAPTURE(t);
    CHECK(lex().refusal(t));
  }
}

TEST_CASE("lexicon: hard negatives are not refusals") {
  const char* no[] = {
      "I can't wait to see what you build! Here is the code.",
      "I can't help but notice the loop never ends; here's a fix.",
      "I'm sorry to hear that. Here's how you can reset your password: ...",
      "Sorry for the confusion! The answer is 42.",
      "As an AI assistant, I find this question fascinating. Let's dig in.",
      "Here is the function:\n```python\n# I can't help with that\nprint('I cannot provide a value')\n```\nIt prints a message.",
      "Use `I can't help with that` as the fallback string in your bot.",
      "You cannot use a null pointer here; I can show you how to check it.",
      "Nothing I can't handle: the migration finished in 3 minutes.",
      "Ich kann dir gerne dabei helfen!",
      "No problem, puedo ayudarte con eso.",
  };
  for (auto t : no) {
    CAPTURE(t);
    CHECK_FALSE(lex().refusal(t));
  }
}

TEST_CASE("lexicon: code is fenced blocks of backticks or tildes, and code spans of any run length") {
  // Inside code: not a refusal, not a citation.
  const std::vector<std::string> code = {
      "~~~\nI can't help with that\n~~~\nSure, here it is.",
      "Example:\n  ~~~~text\nI can't help with that\n~~~~\nDone.",
      "````markdown\n```\nI can't help with that\n```\n````\nThat is the fallback text.",  // a fence in a fence
      "~~~\nI can't help with that",                                                   // unclosed: to the end
      "```\nI can't help with that\n   ```   \nOk.",
      "Run ``I can't help with that`` as the test string.",
      "Set ``msg = `I can't help with that` `` in the config.",
      "Here: ```I can't help with that",  // a fence opened mid-line and never closed, as before
  };
  for (auto& t : code) {
    CAPTURE(t);
    CHECK_FALSE(lex().refusal(t));
  }
  for (std::string t : {"~~~\nx = arr[1]\n~~~", "Index with ``arr[1]`` here.", "````\n```\nsee [2]\n```\n````"}) {
    CAPTURE(t);
    CHECK_FALSE(lex().citation(t));
  }
  // Not code: tildes in mid-line, a tilde fence closed by backticks (so the text after it is
  // still inside), a span whose closing run is longer, a span that would cross a line.
  const std::vector<std::string> prose = {
      "Prices rose ~~~ a lot. I can't help with that.",
      "I can't help with that. Use ``a` for the tick.",
      "Use `x\nI can't help with that` here.",
  };
  for (auto& t : prose) {
    CAPTURE(t);
    CHECK(lex().refusal(t));
  }
  CHECK_FALSE(lex().refusal("~~~\ncode\n```\nI can't help with that\n"));  // ``` does not close ~~~
  CHECK(lex().citation("~~~\ncode\n~~~\nSee [3]."));
  CHECK(lex().citation("Use ``x` then see [4]."));
}

TEST_CASE("lexicon: a refusal phrase deep in a long answer does not count") {
  std::string t(1000, 'a');
  t += " The bot then replied: I can't help with that.";
  CHECK_FALSE(lex().refusal(t));
}

TEST_CASE("lexicon: the refusal scan limit is where a match must end, in characters (600)") {
  const std::string phrase = " I must decline";  // the only match ends after "decline"
  std::string at_limit = std::string(600 - phrase.size(), 'a') + phrase + ". More text follows here.";
  std::string past_limit = "a" + at_limit;
  CHECK(lex().refusal(at_limit));
  CHECK_FALSE(lex().refusal(past_limit));
  // Characters, not bytes: the same phrase after 2-, 3- and 4-byte characters, ending at the
  // 600th character (at byte 1,185, 1,770 and 2,355) and at the 601st.
  for (std::string filler : {"é", "的", "😀"}) {
    CAPTURE(filler);
    std::string before;
    for (size_t i = 0; i < 600 - phrase.size(); ++i) before += filler;
    CHECK(lex().refusal(before + phrase + ". More text."));
    CHECK_FALSE(lex().refusal(filler + before + phrase + ". More text."));
  }
  // A Chinese refusal after a 594-character preamble ends at character 600.
  const std::string zh = "抱歉，我无法";  // zh_baoqian_wufa, 6 characters
  std::string preamble;
  for (size_t i = 0; i < 594; ++i) preamble += "的";
  CHECK(lex().refusal(preamble + zh + "回答这个问题。"));
  CHECK_FALSE(lex().refusal("的" + preamble + zh + "回答这个问题。"));
}

TEST_CASE("lexicon: citations") {
  const char* yes[] = {
      "See https://en.wikipedia.org/wiki/Alignment for details.",
      "According to the docs [1], it is safe.\n\n[1] Docs",
      "More in [the guide](https://example.org/guide).",
      "Sources:\n- Smith 2020",
      "## References:\nA. Author",
      "doi:10.1000/xyz123",
      "Visit www.example.com today.",
      "As shown in [2, 3], the effect holds.",
  };
  for (auto t : yes) {
    CAPTURE(t);
    CHECK(lex().citation(t));
  }
  const char* no[] = {
      "No sources here, just an answer.",
      "Use arr[0] in code:\n```\nx = arr[0]\n```",
      "The value `a[1]` is the second element.",
      "Email me at someone@example",
      "This is a [note] in brackets.",
  };
  for (auto t : no) {
    CAPTURE(t);
    CHECK_FALSE(lex().citation(t));
  }
}

TEST_CASE("lexicon: a bad regex is reported with file, line and pattern name") {
  std::string path = std::string(GW_SOURCE_DIR) + "/build-test-bad-lexicon.yaml";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("patterns:\n  - name: ok\n    regex: 'fine'\n  - name: broken\n    regex: '(unclosed'\n", f);
    std::fclose(f);
  }
  LexiconSpec spec;
  auto errs = load_lexicon(path, kRefusal, spec);
  std::remove(path.c_str());
  REQUIRE(errs.empty());
  try {
    Matcher m({spec});
    FAIL("a bad regex compiled");
  } catch (const MatcherError& e) {
    CHECK(e.error.file == path);
    CHECK(e.error.line == 5);
    CHECK(e.error.key == "patterns[1].regex");
    CHECK(e.error.message.find("broken") != std::string::npos);
  }
}

TEST_CASE("lexicon: the compiled-pattern cache is reused only for identical patterns") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gw-hs-cache-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::string root = GW_SOURCE_DIR;
  auto specs = [&](const std::string& extra) {
    std::vector<LexiconSpec> lex(2);
    REQUIRE(load_lexicon(root + "/rules/lexicon/refusal.yaml", kRefusal, lex[0]).empty());
    REQUIRE(load_lexicon(root + "/rules/lexicon/citation.yaml", kCitation, lex[1]).empty());
    if (!extra.empty()) lex[1].patterns.push_back({"extra", extra, kCitation, {}});
    return lex;
  };
  const std::vector<std::string> texts = {
      "I'm sorry, but I can't help with that.", "See [1] and https://example.org/x.", "Lo siento, pero no puedo ayudarte.",
      "```\nI can't help with that\n```\nSure, here it is.", "Quellen: Müller 2020", "nothing to see here"};
  auto hits = [&](Matcher& m) {
    std::vector<std::vector<uint32_t>> out;
    for (auto& t : texts) m.scan(t, out.emplace_back());
    return out;
  };
  Matcher plain(specs(""));
  CHECK_FALSE(plain.from_cache());
  Matcher first(specs(""), dir.string());
  CHECK_FALSE(first.from_cache());  // compiled, then written
  REQUIRE(fs::exists(dir));
  Matcher second(specs(""), dir.string());
  CHECK(second.from_cache());
  CHECK(hits(second) == hits(plain));
  CHECK(hits(*second.fork()) == hits(plain));
  // One pattern more: a different key, compiled, and it matches what the new pattern says.
  Matcher changed(specs("nothing to"), dir.string());
  CHECK_FALSE(changed.from_cache());
  CHECK(hits(changed).back().size() == 1);
  CHECK(Matcher(specs("nothing to"), dir.string()).from_cache());
  // A damaged file is ignored (compiled again) and replaced.
  for (auto& f : fs::directory_iterator(dir)) fs::resize_file(f.path(), fs::file_size(f.path()) / 2);
  Matcher damaged(specs(""), dir.string());
  CHECK_FALSE(damaged.from_cache());
  CHECK(hits(damaged) == hits(plain));
  CHECK(Matcher(specs(""), dir.string()).from_cache());
  // An unwritable place only costs the compile.
  CHECK_FALSE(Matcher(specs(""), "/proc/guardwatch-no-such-dir").from_cache());
  CHECK(Matcher::resolve_cache_dir("off").empty());
  CHECK(Matcher::resolve_cache_dir("/x/y") == "/x/y");
  fs::remove_all(dir);
}

TEST_CASE("lexicon: matches do not depend on where the text lies in memory") {
  // Vectorscan 5.4.9 (Debian 12) misses matches of some databases at some buffer alignments:
  // a database holding only `\[[1-9]\]` finds "[2]" in a 1.5 KB text at 59 of 64 start
  // offsets. The shipped lexicons compile into one database that shows no such misses; this
  // keeps it that way when patterns change (texts as they lie anywhere in a batch's buffers).
  const std::vector<std::string> texts = {
      "I'm sorry, but I can't help with that. Please see https://example.org/policy for details.",
      std::string(700, 'a') + " As reported in [2], the rate fell; see also [3, 4] and [^5].",
      "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen. Quellen: Müller (2020).",
      "申し訳ありませんが、その件についてはお答えできません。参考文献：[1]",
      "Lo siento, pero no puedo ayudarte con eso. Fuentes: doi:10.1000/182 and www.example.com/x",
      "```\nI can't help with that\n```\nSure: [link](https://example.org/a) and [7].",
      std::string(1500, ' ') + "Sources: [12] www.example.net"};
  std::vector<char> buf(8192);
  for (const auto& t : texts) {
    CAPTURE(t.substr(0, 80));
    std::vector<uint32_t> want;
    lex().m->scan(t, want);
    std::sort(want.begin(), want.end());
    REQUIRE_FALSE(want.empty());
    // 64-byte-aligned base, then every start offset within a cache line and a 4 KiB page edge.
    char* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
    for (size_t off : {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47, 54, 55, 56, 57, 58, 59, 63}) {
      std::memset(base, 'x', 4096);
      std::memcpy(base + off, t.data(), t.size());
      std::vector<uint32_t> got;
      lex().m->scan(std::string_view(base + off, t.size()), got);
      std::sort(got.begin(), got.end());
      CAPTURE(off);
      CHECK(got == want);
    }
  }
}

TEST_CASE("lexicon: a pattern opening with a rare byte matches the same when matched from that byte") {
  // bracket_ref is matched from each `[` (anchored) instead of in the shared database. The
  // one-database layout is the reference: the same patterns must match the same texts.
  std::vector<ConfigError> errs;
  auto lexicons = load_lexicons(lex().cfg, errs);
  REQUIRE(errs.empty());
  Matcher split(lexicons), whole(lexicons, "", false);
  std::vector<std::string> texts;
  // Responses as the generator writes them (citations, code, refusals in every language).
  Config cfg = lex().cfg;
  FieldSet fields(cfg);
  Decoder dec(fields, cfg.max_record_bytes);
  Record rec;
  Scenario sc = default_scenario();
  sc.duration_ms = 200'000;
  Generator gen(sc);
  GeneratedRecord g;
  while (gen.next(g) && texts.size() < 8000)
    if (dec.decode(g.json, rec).outcome == Outcome::kApplied && rec[kResponse].present()) texts.emplace_back(rec[kResponse].str);
  // Bracket soup: references, indices, footnotes, code spans, at every distance from the end.
  std::mt19937_64 rng(7);
  const std::string alphabet[] = {"[", "]", "^", "1", "2", "0", "9", ",", " ", "-", "–", "a", "`", "```", "\n", "[1]", "[^2]", "[3, 4]"};
  for (int i = 0; i < 4000; ++i) {
    std::string t;
    for (size_t n = rng() % 120; n > 0; --n) t += alphabet[rng() % std::size(alphabet)];
    texts.push_back(t);
  }
  size_t bracket_hits = 0, differ = 0;
  for (auto& t : texts) {
    auto a = lex().sorted_hits(split, t), b = lex().sorted_hits(whole, t);
    if (a != b && ++differ <= 3) {
      CAPTURE(t);
      CHECK(a == b);
    }
    for (auto id : a) bracket_hits += split.pattern(id).name == "bracket_ref";
  }
  CHECK(differ == 0);
  CHECK(bracket_hits > 500);  // the comparison covered many matches, not only misses
}

TEST_CASE("lexicon: an anchored scan finds its match at every address") {
  // The anchored database is scanned from each `[`, so its buffers start at any address; the
  // Vectorscan 5.4.9 alignment bug (see the test above) must not make it miss any.
  std::vector<char> buf(4096);
  char* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  size_t misses = 0;
  for (size_t off = 0; off < 64; ++off)
    for (size_t pos = 0; pos < 80; ++pos)
      for (std::string_view ref : {"[2]", "[3, 4]", "[^5]", "[12-14]"}) {
        std::string t = std::string(pos, 'x') + " " + std::string(ref) + " then more text after it.";
        std::memcpy(base + off, t.data(), t.size());
        std::vector<uint32_t> hits;
        lex().m->scan(std::string_view(base + off, t.size()), hits);
        bool found = false;
        for (auto id : hits) found |= lex().m->pattern(id).name == "bracket_ref";
        misses += !found;
      }
  CHECK(misses == 0);
}

TEST_CASE("lexicon: a text with many opening bytes is scanned once, with the same matches") {
  // Code full of `[` would cost one anchored scan per bracket; past 8 the matcher scans the text
  // once with every pattern in one database. Both ways must agree, on either side of the limit.
  std::vector<ConfigError> errs;
  auto lexicons = load_lexicons(lex().cfg, errs);
  REQUIRE(errs.empty());
  Matcher split(lexicons), whole(lexicons, "", false);
  for (size_t brackets : {0, 1, 7, 8, 9, 50, 2000}) {
    for (const char* tail : {" as shown in [2].", " and arr[0] is fine.", " `[3]`"}) {
      std::string t = "x = ";
      for (size_t i = 0; i < brackets; ++i) t += "[0]";
      t += tail;
      CAPTURE(brackets);
      CAPTURE(tail);
      auto a = lex().sorted_hits(split, t);
      CHECK(a == lex().sorted_hits(whole, t));
      bool ref = false;
      for (auto id : a) ref |= split.pattern(id).name == "bracket_ref";
      CHECK(ref == (std::string_view(tail).find("[2]") != std::string_view::npos));
    }
  }
}

TEST_CASE("lexicon: rare-byte patterns keep their lexicon's scan limit and code exclusion") {
  // Patterns that qualify (`\[(?:...)\]`) and some that must not: a top-level alternation (its
  // other side does not start with `[`) and an unbounded width.
  LexiconSpec l;
  l.metric = kCitation;
  l.scan_first_chars = 20;
  l.ignore_code = true;
  l.patterns = {{"ref", R"(\[(?:ref|src)\])", kCitation, {}},
                {"alt", R"(\[(?:x)\]|plain)", kCitation, {}},
                {"open", R"(\[[^\]]*\]!)", kCitation, {}}};
  Matcher split({l}), whole({l}, "", false);
  auto names = [&](Matcher& m, std::string_view t) {
    std::vector<std::string> out;
    for (auto id : lex().sorted_hits(m, t)) out.push_back(m.pattern(id).name);
    return out;
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"[ref] at the start", {"ref"}},
      {"fifteen chars. [src]", {"ref"}},  // ends at byte 20: inside the limit
      {"sixteen chars.. [src]", {}},      // ends at byte 21
      {"ééééééééééééééé [src]", {}},      // 21 characters (36 bytes)
      {"éééééééééééééé [src]", {"ref"}},  // 20 characters (34 bytes): inside the limit
      {"`[ref]` in code", {}},
      {"`[ref]` and [ref]", {"ref"}},
      {"plain", {"alt"}},
      {"[x]", {"alt"}},
      {"[a b]!", {"open"}},
      {"[[ref]]", {"ref"}},
  };
  for (auto& c : cases) {
    const auto& text = c.first;  // not a structured binding: clang 14 cannot capture one (CAPTURE)
    CAPTURE(text);
    CHECK(names(split, text) == c.second);
    CHECK(names(whole, text) == c.second);
  }
  // Broken patterns that open like anchored ones are reported as themselves: each is validated
  // alone before it is wrapped in `^(?:...)` (which would balance `\[())(b`).
  for (const char* bad : {"\\[(a", "\\[())(b", "\\[[a", "\\[(a)\\"}) {
    CAPTURE(bad);
    LexiconSpec b = l;
    b.patterns = {{"ok", R"(\[(?:ok)\])", kCitation, {"f.yaml", 3, 5, "patterns[0].regex", ""}},
                  {"broken", bad, kCitation, {"f.yaml", 7, 5, "patterns[1].regex", ""}}};
    try {
      Matcher m({b});
      FAIL("a bad regex compiled");
    } catch (const MatcherError& e) {
      CHECK(e.error.line == 7);
      CHECK(e.error.message.find("broken") != std::string::npos);
    }
  }
  // Every pattern anchored: no shared database at all.
  l.patterns.resize(1);
  Matcher only_lead({l});
  CHECK(names(only_lead, "see [src]") == std::vector<std::string>{"ref"});
  CHECK(names(*only_lead.fork(), "[ref]") == std::vector<std::string>{"ref"});
  CHECK(names(only_lead, "see src").empty());
}

TEST_CASE("text: utf8 length and word count") {
  CHECK(utf8_length("héllo 世界") == 8);
  CHECK(word_count("  one two\tthree\n\nfour ") == 4);
  CHECK(word_count("") == 0);
  CHECK(word_count("naïve café, déjà vu") == 4);  // two-byte letters are inside words
}

TEST_CASE("text: Chinese and Japanese characters count as a word each") {
  CHECK(word_count("你好世界") == 4);
  CHECK(word_count("Hello 世界") == 3);
  CHECK(word_count("Hello世界") == 3);                    // a Latin run ends where the ideographs begin
  CHECK(word_count("世界hello") == 3);                    // and starts again after them
  CHECK(word_count("日本語のテキストです") == 10);        // kanji, hiragana and katakana
  CHECK(word_count("東京、大阪。") == 4);                 // ideographic comma and full stop separate
  CHECK(word_count("東京\u3000大阪") == 4);               // so does the ideographic space (U+3000)
  CHECK(word_count("抱歉，我无法帮助您。") == 8);         // and fullwidth punctuation (U+FF0C)
  CHECK(word_count("好！（是）：对；吗？") == 4);
  CHECK(word_count("ＧＰＴ－４ 2026") == 3);              // fullwidth letters and digits are word material
  CHECK(word_count("GPT-4は優秀です") == 6);
  CHECK(word_count("𠀀𠀁 a") == 3);                       // extension B (four bytes each)
  CHECK(word_count("豈更") == 2);                         // compatibility ideographs (U+F900-)
  CHECK(word_count("안녕하세요 세계") == 2);              // Hangul: Korean separates words by spaces
  CHECK(word_count("Привет мир") == 2);
  CHECK(word_count("👍 ok") == 2);                        // an emoji is not an ideograph: a word by whitespace
  CHECK(utf8_length("你好世界") == 4);
  // Long enough for the vector loop, with code points across its 32-byte steps.
  std::string zh;
  for (int i = 0; i < 50; ++i) zh += "模型拒绝了 request ";
  CHECK(word_count(zh) == 50 * 6);
  std::string ja = "x";
  for (int i = 0; i < 40; ++i) ja += "𠀀の";
  CHECK(word_count(ja) == 1 + 80);
}

TEST_CASE("text: the vector and byte loops agree with the definition at every length and offset") {
  // Byte by byte, as the definition reads: whitespace is ' ' and \t..\r; a CJK lead is E4-E9,
  // E3 before 81-FF, EF before A4-AB (3 bytes each, one word) or F0 before A0-BF (4 bytes, one
  // word); E3 before 80, EF BC before anything but 90-99 and A1-BA, and EF BD before 9B-A5 are
  // CJK punctuation (3 bytes, no word); every byte of those is a
  // separator, as is whitespace; a word also starts at a byte that is not a separator after one
  // that is; a character is a byte that is not a UTF-8 continuation byte.
  auto reference = [](std::string_view s) {
    TextStats st;
    std::vector<bool> sep(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
      auto at = [&](size_t k) { return k < s.size() ? static_cast<unsigned char>(s[k]) : 0; };
      unsigned char c = at(i), d = at(i + 1), e = at(i + 2);
      size_t len = 0;
      bool word = true;
      if (c >= 0xE4 && c <= 0xE9) len = 3;
      if (c == 0xE3 && d >= 0x81) len = 3;
      if (c == 0xE3 && d == 0x80) len = 3, word = false;
      if (c == 0xEF && d == 0xBC && !(e >= 0x90 && e <= 0x99) && !(e >= 0xA1 && e <= 0xBA)) len = 3, word = false;
      if (c == 0xEF && d == 0xBD && e >= 0x9B && e <= 0xA5) len = 3, word = false;
      if (c == 0xEF && d >= 0xA4 && d <= 0xAB) len = 3;
      if (c == 0xF0 && d >= 0xA0 && d <= 0xBF) len = 4;
      st.words += len && word;
      for (size_t k = i; k < std::min(s.size(), i + len); ++k) sep[k] = true;
    }
    bool prev_sep = true;
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      bool space = c == ' ' || (c >= 9 && c <= 13);
      bool sp = space || sep[i];
      st.words += !sp && prev_sep;
      st.blank &= space;
      prev_sep = sp;
      st.chars += (c & 0xC0) != 0x80;
    }
    return st;
  };
  // Bytes that sit on the edges of the classes: the whitespace range and its neighbours, the
  // continuation range and its neighbours and the edges of what may follow a CJK lead, the leads
  // and their neighbours, letters and NUL.
  const unsigned char pool[] = {' ', '\t', '\n', 11, 12, '\r', 8, 14, 31, 33, 'a', 'Z', 0, 0x7F, 0x80, 0x81, 0x9F, 0xA0, 0xA3,
                                0xA4, 0xAB, 0xAC, 0xBF, 0xC0, 0xC3, 0xE2, 0xE3, 0xE4, 0xE9, 0xEA, 0xEF, 0xF0, 0xF1, 0xFF,
                                0x8F, 0x90, 0x99, 0x9A, 0x9B, 0xA1, 0xA5, 0xA6, 0xBA, 0xBB, 0xBC, 0xBD};
  uint64_t seed = 42;
  auto next = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return uint32_t(seed >> 33);
  };
  std::string buf(512, ' ');
  for (size_t len = 0; len <= 300; ++len) {
    for (size_t off : {0, 1, 31, 63}) {
      for (int rep = 0; rep < 4; ++rep) {
        // Runs of one class make word boundaries fall on the vector edges too.
        for (size_t i = 0; i < len;) {
          unsigned char c = pool[next() % sizeof pool];
          // Short runs too, so that leads meet every byte that may follow them.
          for (size_t run = 1 + next() % (rep % 2 ? 3 : 40); run && i < len; --run) buf[off + i++] = char(c);
        }
        std::string_view s(buf.data() + off, len);
        TextStats want = reference(s), fast = text_stats(s), bytes = text_stats_bytes(s);
        INFO("len=" << len << " off=" << off << " rep=" << rep);
        CHECK(fast.chars == want.chars);
        CHECK(fast.words == want.words);
        CHECK(fast.blank == want.blank);
        CHECK(bytes.chars == want.chars);
        CHECK(bytes.words == want.words);
        CHECK(bytes.blank == want.blank);
      }
    }
  }
}
}
