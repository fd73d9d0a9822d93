#include "node/model_catalog.h"

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "inference/model_generator.h"

namespace exo::node {
namespace {

namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

std::string stem_of(const fs::path& path) {
  return path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
}

std::string available_models(const fs::path& dir) {
  std::string list;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".gguf") continue;
    list += (list.empty() ? "" : ", ") + entry.path().stem().string();
  }
  return list.empty() ? "none" : list;
}

}  // namespace

std::string default_models_dir() {
  if (auto dir = env("EXO_MODELS_DIR"); !dir.empty()) return dir;
  if (auto cache = env("XDG_CACHE_HOME"); !cache.empty())
    return (fs::path(cache) / "exo" / "models").string();
  if (auto home = env("HOME"); !home.empty()) return (fs::path(home) / ".cache" / "exo" / "models").string();
  return "exo-models";
}

ModelSelection select_model(const ModelRequest& request) {
  if (!request.engine.empty() && request.engine != "native" && request.engine != "dummy")
    throw std::invalid_argument("unknown inference engine '" + request.engine +
                                "' (available: native, dummy)");
  ModelSelection out;
  if (request.engine == "dummy" || request.model == "dummy") {
    if (!request.model_file.empty()) throw std::invalid_argument("the dummy engine takes no model file");
    out.engine = "dummy";
    out.model_id = "dummy";
    out.note = "deterministic dummy engine (8 layers, fixed answer)";
    return out;
  }
  out.engine = "native";
  const fs::path dir =
      request.models_dir.empty() ? fs::path(default_models_dir()) : fs::path(request.models_dir);
  if (!request.model_file.empty()) {
    if (!fs::is_regular_file(request.model_file))
      throw std::invalid_argument("model file '" + request.model_file + "' does not exist");
    out.path = request.model_file;
    out.model_id = request.model.empty() ? stem_of(request.model_file) : request.model;
    return out;
  }
  if (!request.model.empty()) {
    if (fs::is_regular_file(request.model)) {
      out.path = request.model;
      out.model_id = stem_of(request.model);
      return out;
    }
    const fs::path candidate = dir / (request.model + ".gguf");
    if (!fs::is_regular_file(candidate)) {
      throw std::invalid_argument("model '" + request.model + "' not found: no file " + candidate.string() +
                                  " (models there: " + available_models(dir) + "); pass --model FILE");
    }
    out.path = candidate.string();
    out.model_id = request.model;
    return out;
  }
  // The offline default: a small random-weight model, generated once.
  out.demo = true;
  out.model_id = kDemoModelId;
  out.note = kDemoModelNote;
  const fs::path demo = dir / (std::string(kDemoModelId) + ".gguf");
  out.path = demo.string();
  if (fs::is_regular_file(demo)) return out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw std::invalid_argument("cannot create the models directory " + dir.string() + ": " + ec.message());
  inference::GenerateOptions options;
  options.shape = *inference::model_preset("demo");
  options.type = inference::TensorType::Q8_0;
  options.seed = 20261127;
  const fs::path temporary = dir / (std::string(kDemoModelId) + ".gguf.tmp-" + std::to_string(::getpid()));
  inference::generate_model(options, temporary.string());
  fs::rename(temporary, demo, ec);
  if (ec) {
    fs::remove(temporary);
    throw std::invalid_argument("cannot write the demo model to " + demo.string() + ": " + ec.message());
  }
  out.generated = true;
  return out;
}

}  // namespace exo::node
