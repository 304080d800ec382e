// The console's only script: poll a JSON progress URL and refresh a progress bar; no libraries.
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var timer = setInterval(function () {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var bar = el.querySelector(".progress > span");
          if (bar && data.total) { bar.style.width = Math.round((100 * data.processed) / data.total) + "%"; }
          el.querySelectorAll("[data-field]").forEach(function (node) {
            var key = node.getAttribute("data-field");
            if (key in data) { node.textContent = data[key]; }
          });
          if (data.finished) {
            clearInterval(timer);
            el.setAttribute("data-finished", "1");
            el.querySelectorAll("[data-hide-when-finished]").forEach(function (n) { n.hidden = true; });
            el.querySelectorAll("[data-show-when-finished]").forEach(function (n) { n.hidden = false; });
            // The rows and badges on the page were rendered before the run: show them as they are now.
            if (el.hasAttribute("data-reload-when-finished")) { window.location.reload(); }
          }
        })
        .catch(function () {});
    }, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
  });
})();
