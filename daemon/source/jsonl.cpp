// JSONL source: a file or stdin, read in large blocks and split on newlines.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "guardwatch/log.hpp"
#include "guardwatch/source.hpp"

namespace gw {
namespace {

class JsonlSource : public Source {
 public:
  // Opens the file here, so that a path that cannot be read fails the command at once (`run`
  // would otherwise start serving an empty result).
  explicit JsonlSource(std::string path) : path_(std::move(path)) {
    if (path_ == "-") return;
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("cannot open input " + path_ + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw std::runtime_error("cannot read input " + path_ + ": it is a directory");
    }
  }
  ~JsonlSource() override {
    if (fd_ > 0) ::close(fd_);
  }
  JsonlSource(const JsonlSource&) = delete;
  JsonlSource& operator=(const JsonlSource&) = delete;

  std::string describe() const override { return path_ == "-" ? "stdin" : path_; }

  bool run(Engine& engine, const std::atomic<bool>& stop) override {
    const int fd = fd_;
    bool ok = true;
    const size_t max_line = engine.config().max_record_bytes + 1;
    // Two buffers: while the engine decodes the lines of one (submitted as a batch), the next
    // block is read into the other. A buffer is reused only once its batch is applied.
    struct Buffer {
      std::vector<char> data;
      uint64_t ticket = 0;
    };
    Buffer bufs[2];
    // Each buffer has Decoder::kPadding bytes beyond what is read into it, so every line in it
    // can be parsed in place (the bytes after a line are readable). A buffer holds two of the
    // longest lines, but each read asks for kReadBytes at most: a batch that small is decoded
    // while the kernel's copy of it is still in the core's L2, and the store's bins stay there
    // too (a 4 MiB read evicts both). Measured on a 2-core EPYC: replay CPU -7% with 1 MiB reads,
    // -9% with 256 KiB, the same with 128 KiB; 64 KiB batches are too small to keep two threads
    // busy (bench/README.md).
    constexpr size_t kReadBytes = 256 << 10;
    const size_t capacity = std::max<size_t>(kReadBytes, 2 * max_line);
    for (auto& b : bufs) b.data.resize(capacity + Decoder::kPadding);
    size_t cur = 0;
    size_t have = 0;
    int64_t line_no = 0;
    bool skipping = false;  // inside an over-long line
    bool eof = false;
    bool bom_check = true;
    std::vector<std::string_view> lines;
    std::vector<SourcePos> positions;
    // A batch is applied when the read after it returns (that read overlaps its preparation).
    // From a pipe or a terminal that read can wait for as long as the writer is silent, so
    // `tail -f log | guardwatch run --input -` would hold its last lines back: when nothing is
    // ready to read, everything submitted is applied first. A regular file never waits.
    struct stat st;
    const bool may_wait = ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode);
    while (!eof && !stop.load(std::memory_order_relaxed)) {
      std::vector<char>& buf = bufs[cur].data;
      if (may_wait) {
        pollfd pfd{fd, POLLIN, 0};
        int r = ::poll(&pfd, 1, 0);
        if (r == 0) {
          engine.drain();
          // Wait for input, looking at `stop` every 100 ms: a SIGTERM while the writer is silent
          // stops at once instead of at the shutdown deadline.
          while ((r = ::poll(&pfd, 1, 100)) == 0 && !stop.load(std::memory_order_relaxed)) {
          }
          if (r == 0) break;
        }
        if (r < 0 && errno == EINTR) continue;
      }
      ssize_t n = ::read(fd, buf.data() + have, std::min(capacity - have, kReadBytes));
      if (n < 0) {
        if (errno == EINTR) continue;
        log::error("read error on {}: {}", path_, std::strerror(errno));
        ok = false;
        break;
      }
      if (n == 0) eof = true;
      have += size_t(n);
      // A UTF-8 byte order mark opening the input (Windows tools write one) is not part of the
      // first record: RFC 8259 lets a parser ignore it, and users expect that.
      if (bom_check) {
        if (have < 3 && !eof) continue;
        bom_check = false;
        if (have >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) {
          std::memmove(buf.data(), buf.data() + 3, have - 3);
          have -= 3;
        }
      }
      // Every whole line in the buffer is one batch.
      size_t start = 0;
      lines.clear();
      positions.clear();
      while (start < have) {
        const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', have - start));
        if (!nl) break;
        size_t end = size_t(nl - buf.data());
        ++line_no;
        if (!skipping) {
          lines.emplace_back(buf.data() + start, end - start);
          positions.emplace_back().line = line_no;
        }
        skipping = false;
        start = end + 1;
      }
      if (eof && start < have) {  // last line without a newline
        ++line_no;
        if (!skipping) {
          lines.emplace_back(buf.data() + start, have - start);
          positions.emplace_back().line = line_no;
        }
        start = have;
      }
      // No line ends here yet (a line longer than one read): read on into this buffer.
      if (lines.empty() && !eof && have < max_line) continue;
      if (!lines.empty()) bufs[cur].ticket = engine.submit(lines, positions, Decoder::kPadding);
      // The incomplete last line moves to the other buffer, once that one's batch is applied.
      size_t next = cur ^ 1;
      engine.wait(bufs[next].ticket);
      std::vector<char>& to = bufs[next].data;
      std::memcpy(to.data(), buf.data() + start, have - start);
      have -= start;
      cur = next;
      if (have >= max_line && !skipping) {
        // Far beyond the record limit: count it once and drop bytes until the next newline.
        SourcePos pos;
        pos.line = line_no + 1;
        engine.ingest(std::string_view(to.data(), have), pos);  // counted as oversized
        skipping = true;
        have = 0;
      } else if (skipping) {
        have = 0;
      }
    }
    engine.drain();
    return ok;
  }

 private:
  std::string path_;
  int fd_ = 0;  // 0: stdin
};

}  // namespace

std::unique_ptr<Source> make_jsonl_source(const std::string& path) { return std::make_unique<JsonlSource>(path); }

}  // namespace gw
