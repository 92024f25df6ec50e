// Tocsin dashboard: live countdowns. Each [data-due] element counts down to
// its deadline and moves from OK to WARNING (at data-warn) to BREACHED, in
// words as well as colour. Times come from the server's clock: the page's
// data-now is the server's "now" when it was drawn.
(function () {
  "use strict";
  var skew = 0;
  function serverNow() { return Date.now() + skew; }
  function sync(root) {
    var now = Date.parse((root || document.body).getAttribute("data-now") || "");
    if (!isNaN(now)) { skew = now - Date.now(); }
  }
  function span(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (d > 0) { return d + "d " + h + "h"; }
    if (h > 0) { return h + "h " + two(m) + "m"; }
    if (m > 0) { return m + "m " + two(sec) + "s"; }
    return sec + "s";
  }
  function tick() {
    var now = serverNow();
    var items = document.querySelectorAll("[data-due]");
    for (var i = 0; i < items.length; i++) {
      var el = items[i];
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { continue; }
      var warnAt = Date.parse(el.getAttribute("data-warn") || "");
      var state = el.getAttribute("data-state");
      if (state !== "breached") {
        if (now >= due) { state = "breached"; }
        else if (!isNaN(warnAt) && now >= warnAt) { state = "warning"; }
        else { state = "ok"; }
      }
      el.setAttribute("data-state", state);
      el.className = "due state-" + state;
      var label = el.querySelector(".label");
      if (label) { label.textContent = state.toUpperCase(); }
      var left = el.querySelector(".left");
      if (left) { left.textContent = now >= due ? span(now - due) + " ago" : "in " + span(due - now); }
      var row = el.closest("tr");
      if (row && row.className.indexOf("row-") === 0) { row.className = "row-" + state; }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    sync();
    tick();
    setInterval(tick, 1000);
  });
  // After htmx swaps in fresh rows, count them down at once.
  document.addEventListener("htmx:afterSwap", function () { tick(); });
})();
