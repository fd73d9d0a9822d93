// Chat templates: recognition from the Jinja text, fallback, and the rendered prompts.
#include <gtest/gtest.h>

#include <vector>

#include "inference/chat_template.h"
#include "inference/gguf_file.h"
#include "inference/tokenizer.h"
#include "test_support.h"

namespace exo::inference {
namespace {

const std::vector<ChatMessage> kConversation{
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Name a colour."}};

TEST(ChatTemplate, RecognisesTheFamiliesByTheirMarkers) {
  EXPECT_EQ(
      recognise_chat_template("{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>"),
      ChatTemplate::LLAMA3);
  EXPECT_EQ(recognise_chat_template("{{'<|im_start|>' + message['role'] + '\\n'}}"), ChatTemplate::CHATML);
  EXPECT_EQ(recognise_chat_template("{{ '[INST] ' + '<<SYS>>\\n' + content }}"), ChatTemplate::LLAMA2);
  EXPECT_EQ(recognise_chat_template("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatTemplate::MISTRAL);
  EXPECT_EQ(recognise_chat_template("{{ message.content }}"), std::nullopt);
}

TEST(ChatTemplate, FallbackUsesTheVocabularyThenChatml) {
  EXPECT_EQ(choose_chat_template(std::nullopt, nullptr), ChatTemplate::CHATML);
  EXPECT_EQ(choose_chat_template(std::string_view("unknown"), nullptr), ChatTemplate::CHATML);
  const auto path = test::model_path("vocab-llama3-bpe.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Vocabulary vocabulary = Vocabulary::from_gguf(GgufFile::open(path.string()));
  EXPECT_EQ(choose_chat_template(std::nullopt, &vocabulary), ChatTemplate::LLAMA3);
  EXPECT_EQ(choose_chat_template(std::string_view("<|im_start|>"), &vocabulary), ChatTemplate::CHATML);
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render_chat(ChatTemplate::LLAMA3, kConversation),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Chatml) {
  EXPECT_EQ(render_chat(ChatTemplate::CHATML, kConversation),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(ChatTemplate::CHATML, kConversation, false).find("<|im_start|>assistant\n", 80),
            std::string::npos);
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render_chat(ChatTemplate::LLAMA2, kConversation),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Name a colour. [/INST]");
  const std::vector<ChatMessage> tool{{"tool", "x"}};
  EXPECT_THROW(render_chat(ChatTemplate::LLAMA2, tool), std::invalid_argument);
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render_chat(ChatTemplate::MISTRAL, kConversation),
            "[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Name a colour. [/INST]");
}

TEST(ChatTemplate, InstTemplatesWithOnlyASystemMessageAndALateSystemMessage) {
  const std::vector<ChatMessage> system_only{{"system", "Be brief."}};
  EXPECT_EQ(render_chat(ChatTemplate::LLAMA2, system_only),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n [/INST]");
  EXPECT_EQ(render_chat(ChatTemplate::MISTRAL, system_only), "[INST] Be brief. [/INST]");
  const std::vector<ChatMessage> late_system{{"user", "Hi"}, {"system", "Be brief."}};
  for (const ChatTemplate kind : {ChatTemplate::LLAMA2, ChatTemplate::MISTRAL}) {
    try {
      render_chat(kind, late_system);
      ADD_FAILURE() << "a late system message was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(kind == ChatTemplate::LLAMA2 ? "Llama 2" : "Mistral"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(ChatTemplate, Llama3PromptEncodesToControlTokens) {
  const auto path = test::model_path("vocab-llama3-bpe.gguf");
  EXO_SKIP_IF_MISSING(path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path.string()));
  const std::vector<ChatMessage> messages{{"user", "Hi"}};
  const auto ids = tokenizer.encode(render_chat(ChatTemplate::LLAMA3, messages), true, true);
  ASSERT_GE(ids.size(), 3U);
  EXPECT_EQ(ids[0], 128000);  // BOS added by the tokenizer
  EXPECT_EQ(tokenizer.vocabulary().text(ids[1]), "<|start_header_id|>");
}

}  // namespace
}  // namespace exo::inference
