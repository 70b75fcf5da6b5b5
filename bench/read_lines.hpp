// Reads a JSONL file the way guardwatch's file source does: 256 KiB reads with spare bytes after
// them, so every line can be parsed in place. (Smaller reads made this baseline 10-13% faster
// than 8 MiB ones on a 2-core EPYC, as they did guardwatch: the data is parsed while still in
// L2.) Shared by the replay baseline and the stage bench so both read exactly alike.
#pragma once
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

namespace bench {

// Lines must be shorter than one read (the bench files are).
// Calls f(line, length, readable_after) for every '\n'-terminated line, where readable_after is
// how many bytes after the line may be read. Returns the number of lines, or -1 if the file
// cannot be opened.
template <class F>
long for_each_line(const char* path, size_t padding, F&& f) {
  int fd = ::open(path, O_RDONLY);
  if (fd < 0) return -1;
  const size_t capacity = 256 << 10;
  std::vector<char> buf(capacity + padding);
  size_t have = 0;
  long lines = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data() + have, capacity - have);
    if (n <= 0 && have == 0) break;
    have += size_t(std::max<ssize_t>(n, 0));
    size_t start = 0;
    for (;;) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', have - start));
      if (!nl) break;
      size_t len = size_t(nl - (buf.data() + start));
      f(buf.data() + start, len, buf.size() - start - len);
      ++lines;
      start += len + 1;
    }
    std::memmove(buf.data(), buf.data() + start, have - start);
    have -= start;
    if (n <= 0) break;
  }
  ::close(fd);
  return lines;
}

}  // namespace bench
