// Chat templates: turn role/content messages into the prompt text a chat model was trained on.
//
// Contract: pure functions, safe from any thread. Four families are built in (not a Jinja engine):
//   LLAMA2   [INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
//   LLAMA3   <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|> ... then the assistant header
//   CHATML   <|im_start|>{role}\n{content}<|im_end|>\n ... then "<|im_start|>assistant\n" (Qwen)
//   MISTRAL  [INST] {system}\n\n{user} [/INST]{assistant}</s>[INST] ...
// The model's tokenizer.chat_template (Jinja text) is recognised by distinctive substrings
// (recognise_chat_template). Fallback when the file has no template or an unrecognised one: the
// family whose special tokens the vocabulary has (<|start_header_id|> -> LLAMA3, <|im_start|> ->
// CHATML, [INST] -> MISTRAL), otherwise CHATML.
// The rendered text does not start with BOS: encode it with add_special = true (the tokenizer adds
// BOS when the vocabulary asks for it) and parse_special = true (so the markers become control
// tokens). Message contents are inserted verbatim. LLAMA2 and MISTRAL accept the roles system,
// user and assistant (std::invalid_argument otherwise; system only before the first user message);
// LLAMA3 and CHATML render any role.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace exo::inference {

class Vocabulary;

enum class ChatTemplate { LLAMA2, LLAMA3, CHATML, MISTRAL };

struct ChatMessage {
  std::string role;
  std::string content;
};

std::string_view chat_template_name(ChatTemplate kind) noexcept;

// nullopt when the Jinja text matches none of the families.
std::optional<ChatTemplate> recognise_chat_template(std::string_view jinja) noexcept;

// The template for a model: recognised from `jinja` when given, else the documented fallback
// (vocabulary may be null).
ChatTemplate choose_chat_template(std::optional<std::string_view> jinja, const Vocabulary* vocabulary);

// The prompt text; with add_generation_prompt the text ends where the assistant's reply begins.
std::string render_chat(ChatTemplate kind, std::span<const ChatMessage> messages,
                        bool add_generation_prompt = true);

}  // namespace exo::inference
