#include "inference/streaming_detokenizer.h"

#include <utility>

#include "inference/unicode.h"

namespace exo::inference {

std::string StreamingDetokenizer::push(TokenId id) {
  tokenizer_->append_piece(pending_, id, state_, options_);
  const std::size_t hold = utf8_incomplete_suffix_length(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamingDetokenizer::finish() {
  std::string rest = std::exchange(pending_, std::string());
  state_ = {};
  return rest;
}

void StreamingDetokenizer::reset() {
  pending_.clear();
  state_ = {};
}

}  // namespace exo::inference
