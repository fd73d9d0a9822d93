#include "api/web_ui.h"

namespace exo::api {

std::string_view web_ui_html() {
  static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>exo</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
 header{padding:10px 16px;background:#222;color:#eee;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
 header b{font-size:17px} #status{font-size:13px;opacity:.85}
 main{max-width:860px;margin:0 auto;padding:12px 16px}
 .note{background:#fff3cd;border:1px solid #e0c36a;padding:8px 10px;border-radius:6px;margin:8px 0;display:none}
 #log{background:#fff;border:1px solid #ddd;border-radius:6px;min-height:280px;padding:10px;overflow-y:auto;max-height:60vh}
 .msg{margin:6px 0;white-space:pre-wrap;word-break:break-word} .user{color:#0b57d0} .err{color:#b00020}
 form{display:flex;gap:8px;margin-top:10px} textarea{flex:1;font:inherit;padding:8px;border-radius:6px;border:1px solid #bbb}
 button{font:inherit;padding:8px 14px;border-radius:6px;border:0;background:#0b57d0;color:#fff;cursor:pointer}
 button[disabled]{background:#999} select{font:inherit} small{color:#666}
 #topology{font-size:13px;color:#444;margin-top:10px}
</style></head><body>
<header><b>exo</b><label>model <select id="model"></select></label><span id="status">…</span></header>
<main>
 <div id="note" class="note"></div>
 <div id="log"></div>
 <form id="form"><textarea id="prompt" rows="2" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
 <button id="send">Send</button><button id="stop" type="button" disabled>Stop</button></form>
 <div id="topology"></div>
 <small>API: POST /v1/chat/completions · <a href="/v1/resources">resources</a> · <a href="/metrics">metrics</a> · <a href="/readyz">readiness</a></small>
</main>
<script>
const $ = id => document.getElementById(id);
let models = [], history = [], controller = null;
function add(cls, text) { const d = document.createElement('div'); d.className = 'msg ' + cls; d.textContent = text; $('log').appendChild(d); $('log').scrollTop = 1e9; return d; }
function showNote() {
  const m = models.find(x => x.id === $('model').value);
  const text = m && m.description ? m.description : '';
  $('note').textContent = text; $('note').style.display = /demo|random/i.test(text) ? 'block' : 'none';
}
async function refresh() {
  try {
    const r = await fetch('/readyz'); const body = await r.json().catch(() => ({}));
    $('status').textContent = r.ok ? 'ready' : ('not ready: ' + (body.error ? body.error.message : r.status));
    const t = await (await fetch('/v1/topology')).json();
    const nodes = Object.entries(t.nodes || {});
    $('topology').textContent = 'Cluster: ' + nodes.length + ' node(s) — ' +
      nodes.map(([id, c]) => id + ' (' + c.memory + ' MB)').join(', ');
  } catch (e) { $('status').textContent = 'node unreachable'; }
}
async function loadModels() {
  const r = await (await fetch('/v1/models')).json();
  models = r.data || [];
  $('model').innerHTML = '';
  for (const m of models) { const o = document.createElement('option'); o.value = o.textContent = m.id; $('model').appendChild(o); }
  showNote();
}
async function send(ev) {
  ev.preventDefault();
  const text = $('prompt').value.trim(); if (!text || controller) return;
  $('prompt').value = ''; add('user', text); history.push({role: 'user', content: text});
  const out = add('assistant', ''); controller = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  try {
    const r = await fetch('/v1/chat/completions', {method: 'POST', headers: {'Content-Type': 'application/json'}, signal: controller.signal,
      body: JSON.stringify({model: $('model').value, messages: history, stream: true})});
    if (!r.ok) { const e = await r.json().catch(() => ({})); throw new Error(e.error ? e.error.message : ('HTTP ' + r.status)); }
    const reader = r.body.getReader(), decoder = new TextDecoder(); let buffer = '';
    for (;;) {
      const {value, done} = await reader.read(); if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut; while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const line = buffer.slice(0, cut).trim(); buffer = buffer.slice(cut + 2);
        if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
        const chunk = JSON.parse(line.slice(6));
        if (chunk.error) throw new Error(chunk.error.message);
        const c = chunk.choices && chunk.choices[0];
        if (c && c.delta && c.delta.content) { out.textContent += c.delta.content; $('log').scrollTop = 1e9; }
      }
    }
    history.push({role: 'assistant', content: out.textContent});
  } catch (e) { if (e.name !== 'AbortError') add('err', String(e.message || e)); }
  controller = null; $('send').disabled = false; $('stop').disabled = true;
}
$('form').addEventListener('submit', send);
$('prompt').addEventListener('keydown', e => { if (e.key === 'Enter' && !e.shiftKey) send(e); });
$('stop').addEventListener('click', () => controller && controller.abort());
$('model').addEventListener('change', showNote);
loadModels().then(refresh); setInterval(refresh, 3000);
</script></body></html>
)HTML";
  return kPage;
}

}  // namespace exo::api
