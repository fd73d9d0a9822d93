// Model selection for a node: which engine and which GGUF file serve which model id.
//
// Contract
// - select_model() applies these rules, in order (errors are std::invalid_argument naming what was
//   looked for and where):
//   1. engine "dummy", or model "dummy": the deterministic dummy engine (model id "dummy").
//   2. `model_file` given: that GGUF file; model id = `model` when given, else the file name
//      without ".gguf".
//   3. `model` given: an existing file path, else `<models_dir>/<model>.gguf`.
//   4. nothing given: the random-weight demo model `<models_dir>/exo-demo.gguf`, generated once
//      (written to a temporary file and renamed, so a crash never leaves half a model behind).
// - default_models_dir(): $EXO_MODELS_DIR, else $XDG_CACHE_HOME/exo/models, else
//   $HOME/.cache/exo/models, else ./exo-models.
// - Not thread-safe with respect to other processes generating the same demo file at the same
//   moment beyond the atomic rename (the last writer wins with identical bytes).
#pragma once

#include <string>

namespace exo::node {

struct ModelRequest {
  std::string engine;      // "", "native" or "dummy"
  std::string model;       // --default-model: a model id or a path ("" = not given)
  std::string model_file;  // --model FILE ("" = not given)
  std::string models_dir;  // "" = default_models_dir()
};

struct ModelSelection {
  std::string engine;  // "native" or "dummy"
  std::string model_id;
  std::string path;        // native: the GGUF file
  std::string note;        // shown to users with the model
  bool demo = false;       // the random-weight demo model
  bool generated = false;  // this call wrote the demo file
};

std::string default_models_dir();
ModelSelection select_model(const ModelRequest& request);

inline constexpr const char* kDemoModelId = "exo-demo";
inline constexpr const char* kDemoModelNote =
    "random-weight demo model: its answers are noise. Pass --model FILE (a Llama-family GGUF) for a real "
    "model";

}  // namespace exo::node
