#include "inference/gguf_file.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <system_error>

#include <fmt/format.h>

#include "inference/mapped_file.h"

namespace exo::inference {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

constexpr std::uint32_t gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr std::uint32_t max_dimensions = 4;       // ggml's GGML_MAX_DIMS
constexpr int max_array_nesting = 8;
constexpr std::uint64_t max_alignment = 1u << 30;
// Smallest possible encodings, used to reject hostile counts before allocating anything.
constexpr std::uint64_t min_metadata_entry_bytes = 8 + 4 + 1;   // key length, type, 1-byte value
constexpr std::uint64_t min_tensor_info_bytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset

// Bounds-checked little-endian reader over the file image. Every read names what it reads so that
// truncation errors say what was being parsed.
class ByteReader {
 public:
  ByteReader(std::span<const std::uint8_t> bytes, const std::string& file_name)
      : bytes_(bytes), file_name_(file_name) {}

  std::uint64_t position() const noexcept { return position_; }
  std::uint64_t remaining() const noexcept { return bytes_.size() - position_; }

  [[noreturn]] void fail(const std::string& message) const {
    throw GgufError(fmt::format("GGUF file '{}': {}", file_name_, message));
  }

  void require(std::uint64_t count, std::string_view what) const {
    if (count > remaining()) {
      fail(fmt::format("truncated: {} at offset {} needs {} bytes, only {} remain (file size {})", what,
                       position_, count, remaining(), bytes_.size()));
    }
  }

  template <typename T>
  T read(std::string_view what) {
    require(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  std::string_view read_string(std::string_view what) {
    const auto length = read<std::uint64_t>(what);
    if (length > remaining()) {
      fail(fmt::format("{} at offset {} claims {} bytes, only {} remain (file size {})", what, position_ - 8,
                       length, remaining(), bytes_.size()));
    }
    std::string_view text(reinterpret_cast<const char*>(bytes_.data() + position_), length);
    position_ += length;
    return text;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  const std::string& file_name_;
  std::uint64_t position_ = 0;
};

std::uint64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::STRING:
      return 8;
    case GgufValueType::ARRAY:
      return 12;
    default:
      return gguf_scalar_size(type);
  }
}

GgufValue read_value(ByteReader& reader, GgufValueType type, std::string_view key, int depth);

GgufValue read_array(ByteReader& reader, std::string_view key, int depth) {
  if (depth >= max_array_nesting) {
    reader.fail(
        fmt::format("metadata key '{}': arrays nested deeper than {} levels", key, max_array_nesting));
  }
  const std::uint64_t type_offset = reader.position();
  const auto raw_type = reader.read<std::uint32_t>("array element type");
  if (!is_valid_gguf_value_type(raw_type)) {
    reader.fail(fmt::format("metadata key '{}': invalid array element type {} at offset {}", key, raw_type,
                            type_offset));
  }
  const auto element_type = static_cast<GgufValueType>(raw_type);
  const auto count = reader.read<std::uint64_t>("array length");
  const std::uint64_t min_size = min_encoded_size(element_type);
  if (count > reader.remaining() / min_size) {
    reader.fail(
        fmt::format("metadata key '{}': array of {} {} elements at offset {} cannot fit in the {} remaining "
                    "bytes",
                    key, count, gguf_value_type_name(element_type), type_offset, reader.remaining()));
  }
  GgufValue::Array elements;
  elements.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i)
    elements.push_back(read_value(reader, element_type, key, depth + 1));
  return GgufValue::from_array(element_type, std::move(elements));
}

GgufValue read_value(ByteReader& reader, GgufValueType type, std::string_view key, int depth) {
  switch (type) {
    case GgufValueType::UINT8:
      return GgufValue::from_unsigned(type, reader.read<std::uint8_t>("uint8 value"));
    case GgufValueType::INT8:
      return GgufValue::from_signed(type, reader.read<std::int8_t>("int8 value"));
    case GgufValueType::UINT16:
      return GgufValue::from_unsigned(type, reader.read<std::uint16_t>("uint16 value"));
    case GgufValueType::INT16:
      return GgufValue::from_signed(type, reader.read<std::int16_t>("int16 value"));
    case GgufValueType::UINT32:
      return GgufValue::from_unsigned(type, reader.read<std::uint32_t>("uint32 value"));
    case GgufValueType::INT32:
      return GgufValue::from_signed(type, reader.read<std::int32_t>("int32 value"));
    case GgufValueType::UINT64:
      return GgufValue::from_unsigned(type, reader.read<std::uint64_t>("uint64 value"));
    case GgufValueType::INT64:
      return GgufValue::from_signed(type, reader.read<std::int64_t>("int64 value"));
    case GgufValueType::FLOAT32:
      return GgufValue::from_float(type, reader.read<float>("float32 value"));
    case GgufValueType::FLOAT64:
      return GgufValue::from_float(type, reader.read<double>("float64 value"));
    case GgufValueType::BOOL: {
      const std::uint64_t offset = reader.position();
      const auto raw = reader.read<std::uint8_t>("bool value");
      if (raw > 1)
        reader.fail(fmt::format("metadata key '{}': invalid bool byte {} at offset {}", key, raw, offset));
      return GgufValue::from_bool(raw == 1);
    }
    case GgufValueType::STRING:
      return GgufValue::from_string(reader.read_string("string value"));
    case GgufValueType::ARRAY:
      return read_array(reader, key, depth);
  }
  reader.fail(fmt::format("metadata key '{}': invalid value type {}", key, static_cast<std::uint32_t>(type)));
}

std::string describe_type(const GgufValue& value) {
  if (value.is_array()) return fmt::format("array of {}", gguf_value_type_name(value.element_type()));
  return std::string(gguf_value_type_name(value.type()));
}

[[noreturn]] void throw_wrong_type(std::string_view key, const GgufValue& value, std::string_view expected) {
  throw GgufMetadataError(
      fmt::format("metadata key '{}' has type {}, expected {}", key, describe_type(value), expected));
}

// Integer conversion shared by scalar getters and array helpers; `where` names the key (and index).
template <typename T>
T to_integer(const GgufValue& value, std::string_view where, std::string_view type_name) {
  if (!value.is_integer()) throw_wrong_type(where, value, fmt::format("an integer ({})", type_name));
  if constexpr (std::is_signed_v<T>) {
    const auto wide = value.to_int64();
    if (!wide || *wide < std::numeric_limits<T>::min() || *wide > std::numeric_limits<T>::max()) {
      throw GgufMetadataError(fmt::format("metadata key '{}': value does not fit in {}", where, type_name));
    }
    return static_cast<T>(*wide);
  } else {
    const auto wide = value.to_uint64();
    if (!wide || *wide > std::numeric_limits<T>::max()) {
      throw GgufMetadataError(fmt::format("metadata key '{}': value does not fit in {}", where, type_name));
    }
    return static_cast<T>(*wide);
  }
}

double to_floating(const GgufValue& value, std::string_view where) {
  const auto number = value.to_double();
  if (!number) throw_wrong_type(where, value, "a float (float32 or float64)");
  return *number;
}

}  // namespace

GgufFile::~GgufFile() = default;
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;

GgufFile GgufFile::open(const std::string& path) {
  GgufFile file;
  file.name_ = path;
  try {
    file.mapping_ = std::make_unique<MappedFile>(path);
  } catch (const std::system_error& error) {
    throw GgufError(fmt::format("GGUF file '{}': {}", path, error.what()));
  }
  file.bytes_ = file.mapping_->bytes();
  file.parse();
  return file;
}

GgufFile GgufFile::from_bytes(std::vector<std::uint8_t> bytes, std::string name) {
  GgufFile file;
  file.name_ = std::move(name);
  file.owned_bytes_ = std::move(bytes);
  file.bytes_ = file.owned_bytes_;
  file.parse();
  return file;
}

GgufFile GgufFile::from_view(std::span<const std::uint8_t> bytes, std::string name) {
  GgufFile file;
  file.name_ = std::move(name);
  file.bytes_ = bytes;
  file.parse();
  return file;
}

void GgufFile::parse() {
  ByteReader reader(bytes_, name_);
  const auto magic = reader.read<std::uint32_t>("magic");
  if (magic != gguf_magic) {
    reader.fail(
        fmt::format("not a GGUF file (magic 0x{:08x}, expected 0x{:08x} \"GGUF\")", magic, gguf_magic));
  }
  version_ = reader.read<std::uint32_t>("version");
  if (version_ != 0 && (version_ & 0xFFFFu) == 0) {
    reader.fail(fmt::format("big-endian GGUF (version field 0x{:08x}) is not supported", version_));
  }
  if (version_ != 2 && version_ != 3) {
    reader.fail(fmt::format("unsupported GGUF version {} (supported: 2, 3)", version_));
  }
  const auto tensor_count = reader.read<std::uint64_t>("tensor count");
  const auto metadata_count = reader.read<std::uint64_t>("metadata count");
  if (metadata_count > reader.remaining() / min_metadata_entry_bytes) {
    reader.fail(fmt::format("metadata count {} cannot fit in the {} remaining bytes", metadata_count,
                            reader.remaining()));
  }
  if (tensor_count > reader.remaining() / min_tensor_info_bytes) {
    reader.fail(fmt::format("tensor count {} cannot fit in the {} remaining bytes", tensor_count,
                            reader.remaining()));
  }

  metadata_.reserve(metadata_count);
  for (std::uint64_t i = 0; i < metadata_count; ++i) {
    const std::uint64_t entry_offset = reader.position();
    const std::string_view key = reader.read_string(fmt::format("key of metadata entry {}", i));
    const std::uint64_t type_offset = reader.position();
    const auto raw_type = reader.read<std::uint32_t>("metadata value type");
    if (!is_valid_gguf_value_type(raw_type)) {
      reader.fail(
          fmt::format("metadata key '{}': invalid value type {} at offset {}", key, raw_type, type_offset));
    }
    GgufValue value = read_value(reader, static_cast<GgufValueType>(raw_type), key, 0);
    if (!metadata_index_.emplace(key, metadata_.size()).second) {
      reader.fail(fmt::format("duplicate metadata key '{}' at offset {}", key, entry_offset));
    }
    metadata_.push_back({key, std::move(value)});
  }

  if (const GgufValue* alignment = find("general.alignment")) {
    const auto value = alignment->to_uint64();
    if (!alignment->is_integer() || !value || *value == 0 || !std::has_single_bit(*value) ||
        *value > max_alignment) {
      reader.fail(fmt::format("general.alignment must be a power of two between 1 and {} (got {} value)",
                              max_alignment, describe_type(*alignment)));
    }
    alignment_ = static_cast<std::uint32_t>(*value);
  }

  tensors_.reserve(tensor_count);
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    const std::uint64_t info_offset = reader.position();
    GgufTensor tensor;
    tensor.name = reader.read_string(fmt::format("name of tensor {}", i));
    const auto dimensions = reader.read<std::uint32_t>("tensor dimension count");
    if (dimensions > max_dimensions) {
      reader.fail(
          fmt::format("tensor '{}' has {} dimensions (at most {})", tensor.name, dimensions, max_dimensions));
    }
    tensor.element_count = 1;
    bool overflow = false;
    for (std::uint32_t d = 0; d < dimensions; ++d) {
      const auto extent = reader.read<std::uint64_t>("tensor dimension");
      if (extent > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        reader.fail(
            fmt::format("tensor '{}' dimension {} is {} (negative or too large)", tensor.name, d, extent));
      }
      tensor.shape.push_back(extent);
      if (extent != 0 && tensor.element_count >
                             static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / extent) {
        overflow = true;
      }
      tensor.element_count *= extent;
    }
    if (overflow) reader.fail(fmt::format("tensor '{}': element count overflows", tensor.name));
    const std::uint64_t type_offset = reader.position();
    const auto raw_type = reader.read<std::uint32_t>("tensor type");
    tensor.type_info = find_tensor_type(raw_type);
    if (tensor.type_info == nullptr) {
      reader.fail(
          fmt::format("tensor '{}' has unknown type id {} at offset {}", tensor.name, raw_type, type_offset));
    }
    if (tensor.row_length() % tensor.type_info->block_size != 0) {
      reader.fail(fmt::format("tensor '{}': row length {} is not a multiple of the {} block size {}",
                              tensor.name, tensor.row_length(), tensor.type_info->name,
                              tensor.type_info->block_size));
    }
    const auto byte_size = checked_byte_size(tensor.type(), tensor.element_count);
    if (!byte_size) reader.fail(fmt::format("tensor '{}': byte size overflows", tensor.name));
    tensor.byte_size = *byte_size;
    tensor.offset = reader.read<std::uint64_t>("tensor data offset");
    if (tensor.offset % alignment_ != 0) {
      reader.fail(fmt::format("tensor '{}': data offset {} is not a multiple of the alignment {}",
                              tensor.name, tensor.offset, alignment_));
    }
    if (!tensor_index_.emplace(tensor.name, tensors_.size()).second) {
      reader.fail(fmt::format("duplicate tensor name '{}' at offset {}", tensor.name, info_offset));
    }
    tensors_.push_back(std::move(tensor));
  }

  // The data section starts at the next multiple of the alignment after the tensor descriptions.
  const std::uint64_t header_end = reader.position();
  data_offset_ =
      (header_end + alignment_ - 1) / alignment_ * alignment_;  // header_end <= file size: no overflow
  const std::uint64_t data_size = data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
  for (auto& tensor : tensors_) {
    if (tensor.offset > data_size || tensor.byte_size > data_size - tensor.offset) {
      reader.fail(
          fmt::format("tensor '{}' ({} bytes at data offset {}) extends past the end of the file (data "
                      "section of {} bytes at file offset {})",
                      tensor.name, tensor.byte_size, tensor.offset, data_size, data_offset_));
    }
    tensor.data = bytes_.subspan(data_offset_ + tensor.offset, tensor.byte_size);
  }
  std::vector<std::size_t> by_offset(tensors_.size());
  std::iota(by_offset.begin(), by_offset.end(), std::size_t{0});
  std::sort(by_offset.begin(), by_offset.end(),
            [this](std::size_t a, std::size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& previous = tensors_[by_offset[i - 1]];
    const GgufTensor& current = tensors_[by_offset[i]];
    if (previous.byte_size != 0 && current.byte_size != 0 &&
        previous.offset + previous.byte_size > current.offset) {
      reader.fail(
          fmt::format("tensors '{}' and '{}' overlap in the data section", previous.name, current.name));
    }
  }
}

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  const auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  const GgufValue* value = find(key);
  if (value == nullptr)
    throw GgufMetadataError(fmt::format("GGUF file '{}': missing metadata key '{}'", name_, key));
  return *value;
}

std::string_view GgufFile::get_string(std::string_view key) const {
  const GgufValue& value = at(key);
  const auto text = value.to_string();
  if (!text) throw_wrong_type(key, value, "string");
  return *text;
}

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& value = at(key);
  const auto flag = value.to_bool();
  if (!flag) throw_wrong_type(key, value, "bool");
  return *flag;
}

std::uint32_t GgufFile::get_u32(std::string_view key) const {
  return to_integer<std::uint32_t>(at(key), key, "uint32");
}
std::int32_t GgufFile::get_i32(std::string_view key) const {
  return to_integer<std::int32_t>(at(key), key, "int32");
}
std::uint64_t GgufFile::get_u64(std::string_view key) const {
  return to_integer<std::uint64_t>(at(key), key, "uint64");
}
std::int64_t GgufFile::get_i64(std::string_view key) const {
  return to_integer<std::int64_t>(at(key), key, "int64");
}
float GgufFile::get_f32(std::string_view key) const {
  return static_cast<float>(to_floating(at(key), key));
}
double GgufFile::get_f64(std::string_view key) const {
  return to_floating(at(key), key);
}

std::optional<std::string_view> GgufFile::find_string(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}
std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_bool(key);
}
std::optional<std::uint32_t> GgufFile::find_u32(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_u32(key);
}
std::optional<std::int32_t> GgufFile::find_i32(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_i32(key);
}
std::optional<float> GgufFile::find_f32(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_f32(key);
}

const GgufValue::Array& GgufFile::get_array(std::string_view key,
                                            std::optional<GgufValueType> element_type) const {
  const GgufValue& value = at(key);
  const GgufValue::Array* elements = value.to_array();
  if (elements == nullptr) {
    throw_wrong_type(
        key, value, element_type ? fmt::format("array of {}", gguf_value_type_name(*element_type)) : "array");
  }
  if (element_type && value.element_type() != *element_type) {
    throw_wrong_type(key, value, fmt::format("array of {}", gguf_value_type_name(*element_type)));
  }
  return *elements;
}

std::vector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  const auto& elements = get_array(key, GgufValueType::STRING);
  std::vector<std::string_view> result;
  result.reserve(elements.size());
  for (const auto& element : elements) result.push_back(*element.to_string());
  return result;
}

std::vector<float> GgufFile::get_f32_array(std::string_view key) const {
  const auto& elements = get_array(key);
  std::vector<float> result;
  result.reserve(elements.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    result.push_back(static_cast<float>(to_floating(elements[i], fmt::format("{}[{}]", key, i))));
  }
  return result;
}

std::vector<std::int32_t> GgufFile::get_i32_array(std::string_view key) const {
  const auto& elements = get_array(key);
  std::vector<std::int32_t> result;
  result.reserve(elements.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    result.push_back(to_integer<std::int32_t>(elements[i], fmt::format("{}[{}]", key, i), "int32"));
  }
  return result;
}

std::vector<std::uint32_t> GgufFile::get_u32_array(std::string_view key) const {
  const auto& elements = get_array(key);
  std::vector<std::uint32_t> result;
  result.reserve(elements.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    result.push_back(to_integer<std::uint32_t>(elements[i], fmt::format("{}[{}]", key, i), "uint32"));
  }
  return result;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const noexcept {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  const GgufTensor* found = find_tensor(name);
  if (found == nullptr) throw GgufError(fmt::format("GGUF file '{}': no tensor named '{}'", name_, name));
  return *found;
}

}  // namespace exo::inference
