// Baseline for bench/replay.sh: the least a decoder must do. Reads a JSONL file in large blocks,
// parses each line with simdjson On-Demand and reads the same fields guardwatch reads,
// response text included (unescaped), folding them into a checksum so nothing is optimised away.
#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: simdjson_baseline FILE\n");
    return 2;
  }
  int fd = ::open(argv[1], O_RDONLY);
  if (fd < 0) return 1;
  simdjson::ondemand::parser parser;
  // Spare bytes after what is read, so every line can be parsed in place (as guardwatch does
  // for file input since session 3; it used to copy each line into a padded buffer, as here).
  const size_t capacity = 8 << 20;
  std::vector<char> buf(capacity + simdjson::SIMDJSON_PADDING);
  size_t have = 0;
  uint64_t records = 0, checksum = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    ssize_t n = ::read(fd, buf.data() + have, capacity - have);
    if (n <= 0 && have == 0) break;
    have += size_t(std::max<ssize_t>(n, 0));
    size_t start = 0;
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', have - start));
      if (!nl) break;
      size_t len = size_t(nl - (buf.data() + start));
      simdjson::ondemand::document doc;
      if (!parser.iterate(buf.data() + start, len, buf.size() - start).get(doc)) {
        simdjson::ondemand::object obj;
        if (!doc.get_object().get(obj)) {
          for (auto field : obj) {
            std::string_view key;
            if (field.unescaped_key().get(key)) break;
            simdjson::ondemand::value v;
            if (field.value().get(v)) break;
            simdjson::ondemand::json_type t;
            if (v.type().get(t)) break;
            if (t == simdjson::ondemand::json_type::string) {
              std::string_view s;
              if (!v.get_string().get(s)) checksum += s.size() + (s.empty() ? 0 : uint8_t(s[0]));
            } else if (t == simdjson::ondemand::json_type::number) {
              double d;
              if (!v.get_double().get(d)) checksum += uint64_t(d);
            }
          }
        }
      }
      ++records;
      start += len + 1;
    }
    std::memmove(buf.data(), buf.data() + start, have - start);
    have -= start;
    if (n <= 0) break;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("records=%llu seconds=%.3f records_per_second=%.0f checksum=%llu\n", (unsigned long long)records, secs,
              double(records) / secs, (unsigned long long)checksum);
  return 0;
}
