#include "inference/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace exo::inference {

namespace {

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

// Closes a descriptor when leaving scope; the mapping stays valid after close.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno(errno, "cannot open '" + path + "'");
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_errno(errno, "cannot stat '" + path + "'");
  if (!S_ISREG(info.st_mode)) throw_errno(EINVAL, "'" + path + "' is not a regular file");
  if (info.st_size == 0) return;
  const auto length = static_cast<std::size_t>(info.st_size);
  void* address = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (address == MAP_FAILED) throw_errno(errno, "cannot map '" + path + "'");
  data_ = static_cast<const std::uint8_t*>(address);
  size_ = length;
  // Pages read in from now on may come as 2 MiB folios mapped by one huge-page entry (fewer TLB
  // misses while kernels stream the weights). Advice only: a refusal changes nothing else.
  static_cast<void>(::madvise(address, length, MADV_HUGEPAGE));
}

MappedFile::~MappedFile() {
  release();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::release() noexcept {
  if (data_ != nullptr) {
    // const_cast is required by the munmap signature; the mapping was created by this object.
    ::munmap(const_cast<std::uint8_t*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }
}

}  // namespace exo::inference
