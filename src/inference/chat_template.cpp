#include "inference/chat_template.h"

#include <fmt/format.h>

#include <stdexcept>

#include "inference/vocabulary.h"

namespace exo::inference {

namespace {

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

void check_role(const ChatMessage& m, ChatTemplate kind) {
  if (m.role != "system" && m.role != "user" && m.role != "assistant")
    throw std::invalid_argument("the " + std::string(chat_template_name(kind)) +
                                " chat template has no role '" + m.role + "' (system, user, assistant)");
}

// Leading system messages, joined by blank lines; `rest` starts after them.
std::string leading_system(std::span<const ChatMessage> messages, std::size_t& rest) {
  std::string system;
  rest = 0;
  while (rest < messages.size() && messages[rest].role == "system") {
    if (!system.empty()) system += "\n\n";
    system += messages[rest++].content;
  }
  return system;
}

// The [INST] family: Llama 2 and Mistral differ only in these strings.
struct InstFormat {
  ChatTemplate kind;
  std::string_view family;             // for error messages
  std::string_view later_user_prefix;  // before every user turn but the first
  std::string_view system_open;        // around the system text in the first user turn
  std::string_view system_close;
  std::string_view system_only_close;  // after the system text when no user turn follows
  std::string_view assistant_open;
  std::string_view assistant_close;
};

constexpr InstFormat llama2_format{ChatTemplate::LLAMA2, "Llama 2",        "<s>", "<<SYS>>\n",
                                   "\n<</SYS>>\n\n",     "\n<</SYS>>\n\n", " ",   " </s>"};
constexpr InstFormat mistral_format{ChatTemplate::MISTRAL, "Mistral", "", "", "\n\n", "", "", "</s>"};

std::string render_inst(const InstFormat& format, std::span<const ChatMessage> messages) {
  std::size_t i = 0;
  const std::string system = leading_system(messages, i);
  std::string out;
  bool first_user = true;
  for (; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    check_role(m, format.kind);
    if (m.role == "system")
      throw std::invalid_argument(
          fmt::format("the {} chat template takes system messages only first", format.family));
    if (m.role == "user") {
      if (!first_user) out += format.later_user_prefix;
      out += "[INST] ";
      if (first_user && !system.empty())
        out += fmt::format("{}{}{}", format.system_open, system, format.system_close);
      out += m.content + " [/INST]";
      first_user = false;
    } else {
      out += fmt::format("{}{}{}", format.assistant_open, m.content, format.assistant_close);
    }
  }
  if (first_user && !system.empty())
    out += fmt::format("[INST] {}{}{} [/INST]", format.system_open, system, format.system_only_close);
  return out;
}

}  // namespace

std::string_view chat_template_name(ChatTemplate kind) noexcept {
  switch (kind) {
    case ChatTemplate::LLAMA2:
      return "Llama 2";
    case ChatTemplate::LLAMA3:
      return "Llama 3";
    case ChatTemplate::CHATML:
      return "ChatML";
    case ChatTemplate::MISTRAL:
      return "Mistral";
  }
  return "unknown";
}

std::optional<ChatTemplate> recognise_chat_template(std::string_view jinja) noexcept {
  if (contains(jinja, "<|start_header_id|>")) return ChatTemplate::LLAMA3;
  if (contains(jinja, "<|im_start|>")) return ChatTemplate::CHATML;
  if (contains(jinja, "[INST]"))
    return contains(jinja, "<<SYS>>") ? ChatTemplate::LLAMA2 : ChatTemplate::MISTRAL;
  return std::nullopt;
}

ChatTemplate choose_chat_template(std::optional<std::string_view> jinja, const Vocabulary* vocabulary) {
  if (jinja) {
    if (const auto kind = recognise_chat_template(*jinja)) return *kind;
  }
  if (vocabulary != nullptr) {
    if (vocabulary->find("<|start_header_id|>")) return ChatTemplate::LLAMA3;
    if (vocabulary->find("<|im_start|>")) return ChatTemplate::CHATML;
    if (vocabulary->find("[INST]")) return ChatTemplate::MISTRAL;
  }
  return ChatTemplate::CHATML;
}

std::string render_chat(ChatTemplate kind, std::span<const ChatMessage> messages,
                        bool add_generation_prompt) {
  std::string out;
  switch (kind) {
    case ChatTemplate::LLAMA2:
      return render_inst(llama2_format, messages);
    case ChatTemplate::MISTRAL:
      return render_inst(mistral_format, messages);
    case ChatTemplate::LLAMA3:
      for (const ChatMessage& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
    case ChatTemplate::CHATML:
      for (const ChatMessage& m : messages)
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
  }
  return out;
}

}  // namespace exo::inference
