// kb serve: draws the knowledge tree in the sidebar from nav-data.js (one script for the whole
// site, so no page carries a copy of the tree), and opens a code block's result when a link
// (its badge) points at it.
(function () {
  "use strict";
  var SMALL_TREE = 40; // a tree this small is shown unfolded
  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var here = body.getAttribute("data-page") || "";
  function encodePath(page) {
    var parts = page.split("#");
    return parts[0].split("/").map(encodeURIComponent).join("/") + (parts.length > 1 ? "#" + parts[1] : "");
  }
  function fill(list, files) {
    files.forEach(function (f) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = root + encodePath(f[0]);
      a.textContent = f[1];
      a.title = f[0];
      if (f[0] === here) {
        a.className = "current";
        a.setAttribute("aria-current", "page");
      }
      li.appendChild(a);
      list.appendChild(li);
    });
  }
  function drawTree() {
    var nav = document.getElementById("kb-tree");
    var data = window.KB_NAV;
    if (!nav || !data) return;
    var total = data.folders.reduce(function (n, f) { return n + f[2].length; }, 0);
    var frag = document.createDocumentFragment();
    data.folders.forEach(function (folder) {
      var files = folder[2];
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      var name = document.createElement("span");
      name.className = "topic";
      name.textContent = folder[1];
      var count = document.createElement("span");
      count.className = "count";
      count.textContent = files.length;
      summary.appendChild(name);
      summary.appendChild(count);
      details.appendChild(summary);
      var list = document.createElement("ul");
      details.appendChild(list);
      var mine = files.some(function (f) { return f[0] === here; });
      var filled = false;
      function open() { if (!filled) { fill(list, files); filled = true; } }
      if (mine || total <= SMALL_TREE) { open(); details.open = true; }
      // Large folders get their links only when opened: the page stays light however big the tree.
      details.addEventListener("toggle", function () { if (details.open) open(); });
      frag.appendChild(details);
    });
    nav.textContent = "";
    nav.appendChild(frag);
    var current = nav.querySelector("a.current");
    if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
  }
  function openTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") target.open = true;
  }
  drawTree();
  openTarget();
  window.addEventListener("hashchange", openTarget);
})();
