// Keyboard review in the queue: j/k move between rows, f labels fraud, l legitimate, Enter opens.
// Loaded from the package (no CDN, no inline script: the CSP allows only 'self').
"use strict";
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target.matches && target.matches("input, textarea, select")) return;
  var row = target.closest ? target.closest("tr[data-row]") : null;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
  if (!rows.length) return;
  if (event.key === "j" || event.key === "k") {
    var index = row ? rows.indexOf(row) : -1;
    var next = rows[Math.max(0, Math.min(rows.length - 1, index + (event.key === "j" ? 1 : -1)))];
    if (next) { next.focus(); event.preventDefault(); }
    return;
  }
  if (!row) return;
  if (event.key === "f" || event.key === "l") {
    var button = row.querySelector('button[data-label="' + (event.key === "f" ? "fraud" : "legitimate") + '"]');
    if (button) { button.click(); event.preventDefault(); }
  } else if (event.key === "Enter" && target === row) {
    window.location.assign(row.getAttribute("data-href"));
  }
});
document.addEventListener("DOMContentLoaded", function () {
  var first = document.querySelector("tr[data-row]");
  if (first && !document.querySelector("[autofocus]")) first.focus();
});
