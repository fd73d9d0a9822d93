#include "inference/chat_template.h"

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

std::string render_llama2(std::span<const ChatMessage> messages) {
  std::size_t i = 0;
  std::string system = leading_system(messages, i);
  std::string out;
  bool first_user = true;
  for (; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    check_role(m, ChatTemplate::LLAMA2);
    if (m.role == "system")
      throw std::invalid_argument("the Llama 2 chat template takes system messages only first");
    if (m.role == "user") {
      if (!first_user) out += "<s>";
      out += "[INST] ";
      if (first_user && !system.empty()) out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
      out += m.content + " [/INST]";
      first_user = false;
    } else {
      out += " " + m.content + " </s>";
    }
  }
  if (first_user && !system.empty()) out += "[INST] <<SYS>>\n" + system + "\n<</SYS>>\n\n [/INST]";
  return out;
}

std::string render_mistral(std::span<const ChatMessage> messages) {
  std::size_t i = 0;
  std::string system = leading_system(messages, i);
  std::string out;
  bool first_user = true;
  for (; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    check_role(m, ChatTemplate::MISTRAL);
    if (m.role == "system")
      throw std::invalid_argument("the Mistral chat template takes system messages only first");
    if (m.role == "user") {
      out += "[INST] ";
      if (first_user && !system.empty()) out += system + "\n\n";
      out += m.content + " [/INST]";
      first_user = false;
    } else {
      out += m.content + "</s>";
    }
  }
  if (first_user && !system.empty()) out += "[INST] " + system + " [/INST]";
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
      return render_llama2(messages);
    case ChatTemplate::MISTRAL:
      return render_mistral(messages);
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
