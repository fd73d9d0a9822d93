// The node's web UI: one self-contained HTML page (no external assets, works offline) served at "/".
// It lists the models (with their notes, e.g. that the demo model has random weights), shows the
// cluster topology and the node's readiness, and runs a streamed chat through /v1/chat/completions.
#pragma once

#include <string_view>

namespace exo::api {

std::string_view web_ui_html();

}  // namespace exo::api
