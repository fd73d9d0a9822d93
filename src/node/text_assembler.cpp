#include "node/text_assembler.h"

#include <algorithm>

namespace exo::node {
namespace {

// Length of the longest prefix of `bytes` that does not end inside a UTF-8 sequence.
std::size_t complete_utf8_prefix(const std::string& bytes) {
  std::size_t i = bytes.size();
  std::size_t back = 0;
  while (i > 0 && back < 4) {
    const auto c = static_cast<unsigned char>(bytes[i - 1]);
    if ((c & 0xC0U) != 0x80U) {  // a lead byte (or ASCII): is its sequence complete?
      const std::size_t need = c < 0x80U            ? 1
                               : (c >> 5U) == 0x6U  ? 2
                               : (c >> 4U) == 0xEU  ? 3
                               : (c >> 3U) == 0x1EU ? 4
                                                    : 1;
      return back + 1 >= need ? bytes.size() : i - 1;
    }
    --i;
    ++back;
  }
  return bytes.size();
}

// How much of `text` can be shown without revealing the start of a stop sequence.
std::size_t safe_length(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t hold = 0;
  for (const auto& stop : stops) {
    for (std::size_t k = std::min(stop.size() - 1, text.size()); k > hold; --k) {
      if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return text.size() - hold;
}

}  // namespace

TextAssembler::TextAssembler(std::vector<std::string> stop_sequences) : stops_(std::move(stop_sequences)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

TextAssembler::Output TextAssembler::feed(const std::string& bytes) {
  Output out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  pending_ += bytes;
  const std::size_t complete = complete_utf8_prefix(pending_);
  text_ += pending_.substr(0, complete);
  pending_.erase(0, complete);
  std::size_t visible = text_.size();
  for (const auto& stop : stops_) {
    const auto at = text_.find(stop, shown_ > stop.size() ? shown_ - stop.size() : 0);
    if (at != std::string::npos && at < visible) {
      visible = at;
      stopped_ = true;
    }
  }
  if (!stopped_) visible = safe_length(text_, stops_);
  if (visible > shown_) {
    out.text = text_.substr(shown_, visible - shown_);
    shown_ = visible;
  }
  out.stopped = stopped_;
  return out;
}

std::string TextAssembler::flush() {
  if (stopped_) return {};
  // Bytes of an unfinished UTF-8 sequence are dropped: they are not text.
  std::string out = text_.substr(shown_);
  shown_ = text_.size();
  pending_.clear();
  return out;
}

}  // namespace exo::node
