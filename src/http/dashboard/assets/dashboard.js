// Keeps an open dashboard page current: every 30 seconds, while the tab is visible, the
// page is fetched again and its content swapped in (the charts are drawn on the server).
(function () {
  "use strict";
  var EVERY_MS = 30000;
  function refresh() {
    if (document.visibilityState !== "visible") return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("content");
        var current = document.getElementById("content");
        // Not while the reader is choosing in the form.
        if (fresh && current && !current.contains(document.activeElement && document.activeElement.form ? document.activeElement : null)) {
          current.replaceWith(fresh);
          document.documentElement.dataset.refreshedAt = String(Date.now());
        }
      })
      .catch(function () { /* offline for a moment: the next round tries again */ });
  }
  window.setInterval(refresh, EVERY_MS);
  document.addEventListener("visibilitychange", refresh);
})();
