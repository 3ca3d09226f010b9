// Search for the static site (kb serve --build): BM25 over the sections in search-index.js,
// scored like the live server's index (bm25s defaults: Lucene idf, k1=1.5, b=0.75).
(function () {
  "use strict";
  var data = window.KB_SEARCH || { docs: [], stop: [] };
  var stop = new Set(data.stop);
  var WORD = /[\p{L}\p{N}_]{2,}/gu;
  function tokenize(text) {
    return (text.toLowerCase().match(WORD) || []).filter(function (t) { return !stop.has(t); });
  }
  function plain(md) {
    return md.replace(/^\s{0,3}(```|~~~).*$/gm, " ").replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/gm, " ").replace(/[#*`>|]+/g, " ").replace(/\s+/g, " ").trim();
  }
  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  var docs = data.docs.map(function (d) {
    var tokens = tokenize([d.h, d.h, d.h, d.f, d.t].join(" "));
    var tf = new Map();
    tokens.forEach(function (t) { tf.set(t, (tf.get(t) || 0) + 1); });
    return { doc: d, tf: tf, len: tokens.length };
  });
  var df = new Map();
  docs.forEach(function (d) { d.tf.forEach(function (_, t) { df.set(t, (df.get(t) || 0) + 1); }); });
  var avgdl = docs.reduce(function (a, d) { return a + d.len; }, 0) / Math.max(docs.length, 1);
  function search(query) {
    var terms = Array.from(new Set(tokenize(query)));
    var n = docs.length, k1 = 1.5, b = 0.75;
    return docs.map(function (d) {
      var score = 0;
      terms.forEach(function (t) {
        var f = d.tf.get(t);
        if (!f) return;
        var idf = Math.log(1 + (n - df.get(t) + 0.5) / (df.get(t) + 0.5));
        score += idf * f / (f + k1 * (1 - b + b * d.len / avgdl));
      });
      return { d: d.doc, score: score };
    }).filter(function (h) { return h.score > 0; })
      .sort(function (a, b) { return b.score - a.score; }).slice(0, 20);
  }
  function excerpt(md, terms) {
    var text = plain(md), lower = text.toLowerCase(), start = 0, m;
    WORD.lastIndex = 0;
    while ((m = WORD.exec(lower)) !== null) {
      if (terms.has(m[0])) { start = Math.max(0, m.index - 80); break; }
    }
    var win = text.slice(start, start + 260);
    return escapeHtml(win).replace(/[\p{L}\p{N}_]{2,}/gu, function (w) {
      return terms.has(w.toLowerCase()) ? "<mark>" + w + "</mark>" : w;
    }) + (start + 260 < text.length ? " …" : "");
  }
  var q = new URLSearchParams(window.location.search).get("q") || "";
  var box = document.getElementById("search-box");
  if (box) box.value = q;
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-hits");
  if (!q.trim() || !list) return;
  var hits = search(q);
  var terms = new Set(tokenize(q));
  status.textContent = hits.length + " section" + (hits.length === 1 ? "" : "s") + " match \u201c" + q + "\u201d.";
  list.innerHTML = hits.map(function (h) {
    return '<li class="hit"><a class="hit-title" href="' + escapeHtml(h.d.u) + '">' + escapeHtml(h.d.h || h.d.f) +
      '</a><div class="hit-file">' + escapeHtml(h.d.f) + '</div><p class="hit-text">' + excerpt(h.d.t, terms) + "</p></li>";
  }).join("");
})();
