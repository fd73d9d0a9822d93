// MappedFile: a whole file mapped read-only into memory.
//
// Contract: move-only RAII owner of one read-only private mapping; the mapping is released by the
// destructor. bytes() stays valid (same address) for the lifetime of the object, across moves.
// Reading bytes() from several threads at once is safe. An empty file gives an empty span and no
// mapping. Construction failures throw std::system_error naming the path. If another process
// truncates the file while it is mapped, reads past the new end fault (a property of memory
// mappings); model files are expected not to change while in use. The mapping is advised for
// transparent huge pages (best effort; see HugePageBuffer for why).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace exo::inference {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

 private:
  void release() noexcept;

  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace exo::inference
