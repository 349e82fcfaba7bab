// Checked reads of regular files, and whole-file writes through a temporary name (readers never
// see half a file).
#include "cgan/base/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cgan/base/error.hpp"

namespace cgan {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

std::string parent_dir(const std::string& path) {
  const size_t s = path.find_last_of('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return path.substr(0, s);
}

bool write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, std::min<size_t>(size, size_t(1) << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& chunks) {
  if (path.empty()) throw Error("write: empty output path");
  const std::string tmp = cat(path, ".tmp.", static_cast<long>(::getpid()));
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd < 0) {
    const int e = errno;
    const std::string dir = parent_dir(path);
    struct stat sb;
    if (e == ENOENT && ::stat(dir.c_str(), &sb) != 0)
      throw Error(cat(path, ": cannot write, directory '", dir, "' does not exist"));
    throw Error(cat(path, ": cannot create temporary file '", tmp, "': ", errno_text(e)));
  }
  auto fail = [&](const std::string& what, int e) {
    ::close(f.fd);
    f.fd = -1;
    ::unlink(tmp.c_str());
    throw Error(cat(path, ": ", what, ": ", errno_text(e)));
  };
  for (const ByteSpan& c : chunks)
    if (c.size > 0 && !write_all(f.fd, c.data, c.size)) fail("write failed", errno);
  if (::fsync(f.fd) != 0) fail("fsync failed", errno);
  const int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(cat(path, ": close failed: ", errno_text(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(cat(path, ": cannot rename the temporary file into place: ", errno_text(e)));
  }
  // Make the rename itself durable (best effort: some filesystems refuse fsync on directories).
  const int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

static const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "directory";
  if (S_ISFIFO(m)) return "FIFO";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "character device";
  if (S_ISBLK(m)) return "block device";
  return "special file";
}

static std::string with_article(const std::string& what) {
  return (!what.empty() && std::strchr("aeiouAEIOU", what[0]) ? "an " : "a ") + what;
}

int open_regular_file(const std::string& path, const std::string& what, uint64_t* size) {
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) throw Error(cat(path, ": cannot open ", what, ": ", errno_text(errno)));
  if (!S_ISREG(sb.st_mode)) throw Error(cat(path, ": is a ", file_kind(sb.st_mode), ", not ", with_article(what)));
  // O_NONBLOCK: should the path have become a FIFO since the stat, open must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(cat(path, ": cannot open ", what, ": ", errno_text(errno)));
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    throw Error(cat(path, ": is not a regular file, not ", with_article(what)));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (size) *size = static_cast<uint64_t>(sb.st_size);
  return fd;
}

std::string read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  uint64_t size = 0;
  Fd f;
  f.fd = open_regular_file(path, what, &size);
  if (size > max_bytes)
    throw Error(cat(path, ": ", what, " of ", size, " bytes is larger than the limit of ", max_bytes, " bytes"));
  std::string s(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = ::read(f.fd, &s[got], s.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(cat(path, ": read error: ", errno_text(errno)));
    if (n == 0) break;  // the file shrank while being read: what is there
    got += static_cast<size_t>(n);
  }
  s.resize(got);
  return s;
}

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    unsigned cp = 0, min = 0;
    if ((c & 0xe0) == 0xc0)
      len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0)
      len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0)
      len = 4, cp = c & 0x07, min = 0x10000;
    else
      return false;
    if (i + static_cast<size_t>(len) > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, {{content.data(), content.size()}});
}

}  // namespace cgan
