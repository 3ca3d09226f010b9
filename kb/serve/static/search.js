// Search for the static site (kb serve --build): BM25 over the sections, scored like the live
// server's index (bm25s defaults: Lucene idf, k1=1.5, b=0.75). The index is in shards under
// _static/search/ (kb/serve/search_static.py writes them): the file table first, then one term
// shard per query word and the doc shards of the best hits, each loaded only when needed, as
// scripts (a page opened from disk may load scripts but not fetch files).
(function () {
  "use strict";
  var WORD = /[\p{L}\p{N}_]{2,}/gu;
  var STOP = new Set(%STOPWORDS%);
  var root = document.body.getAttribute("data-root") || "";
  var parts = (window.KB_SEARCH_PARTS = window.KB_SEARCH_PARTS || {});
  function tokenize(text) {
    return (text.toLowerCase().match(WORD) || []).filter(function (t) { return !STOP.has(t); });
  }
  function shardOf(term, n) { // FNV-1a over UTF-16 code units, as search_static.term_shard
    var h = 0x811c9dc5;
    for (var i = 0; i < term.length; i++) { h ^= term.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
    return h % n;
  }
  function load(names, done) {
    var waiting = 0;
    names.forEach(function (name) {
      if (parts[name]) return;
      waiting++;
      var s = document.createElement("script");
      s.src = root + "_static/search/" + name + ".js";
      s.onload = s.onerror = function () { if (--waiting === 0) done(); };
      document.head.appendChild(s);
    });
    if (waiting === 0) done();
  }
  function escapeHtml(s) {
    return s.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function encodePath(page) { return page.split("/").map(encodeURIComponent).join("/"); }
  function mark(text, terms) {
    return escapeHtml(text).replace(/[\p{L}\p{N}_]{2,}/gu, function (w) {
      return terms.has(w.toLowerCase()) ? "<mark>" + w + "</mark>" : w;
    });
  }
  var q = new URLSearchParams(window.location.search).get("q") || "";
  var box = document.getElementById("search-box");
  if (box) box.value = q;
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-hits");
  var terms = Array.from(new Set(tokenize(q)));
  if (!q.trim() || !list) return;
  status.textContent = "Searching…";
  load(["index"], function () {
    var index = parts.index;
    if (!index) { status.textContent = "The search index is missing: run kb serve --build again."; return; }
    var n = index.docLen.length;
    var avgdl = index.docLen.reduce(function (a, b) { return a + b; }, 0) / Math.max(n, 1);
    var shards = terms.map(function (t) { return "t" + shardOf(t, index.termShards); });
    load(shards, function () {
      var scores = new Map();
      terms.forEach(function (t, i) {
        var plist = (parts[shards[i]] || {})[t];
        if (!plist) return;
        var df = plist.length / 2, doc = 0;
        var idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        for (var j = 0; j < plist.length; j += 2) {
          doc += plist[j];
          var f = plist[j + 1], len = index.docLen[doc];
          var s = idf * f / (f + 1.5 * (1 - 0.75 + 0.75 * len / avgdl));
          scores.set(doc, (scores.get(doc) || 0) + s);
        }
      });
      var hits = Array.from(scores.entries()).sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; }).slice(0, 20);
      var docShards = Array.from(new Set(hits.map(function (h) { return "d" + Math.floor(h[0] / index.docsPerShard); })));
      load(docShards, function () {
        var marks = new Set(terms);
        status.textContent = hits.length + " section" + (hits.length === 1 ? "" : "s") + " match \u201c" + q + "\u201d" +
          (hits.length === 20 ? " (the best 20)." : ".");
        list.innerHTML = hits.map(function (h) {
          var doc = h[0], file = index.files[index.docFile[doc]];
          var shown = (parts["d" + Math.floor(doc / index.docsPerShard)] || [])[doc % index.docsPerShard] || ["", "", ""];
          var url = encodePath(file[0]) + (shown[0] ? "#" + encodeURIComponent(shown[0]) : "");
          return '<li class="hit"><a class="hit-title" href="' + escapeHtml(root + url) + '">' + escapeHtml(shown[1] || file[1]) +
            '</a><div class="hit-file">' + escapeHtml(file[1]) + '</div><p class="hit-text">' + mark(shown[2], marks) + "</p></li>";
        }).join("");
      });
    });
  });
})();
