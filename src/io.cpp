// Whole-file writes through a temporary name: readers never see half a file.
#include "cgan/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cgan/error.hpp"

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


void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, {{content.data(), content.size()}});
}

}  // namespace cgan
