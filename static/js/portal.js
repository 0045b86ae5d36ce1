// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Copy buttons: <button data-copy="text">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
  // Countdowns: <span data-countdown="seconds">; the page's own polling brings the outcome.
  setInterval(function () {
    document.querySelectorAll("[data-countdown]").forEach(function (counter) {
      var left = Math.max(parseInt(counter.getAttribute("data-countdown"), 10) - 1, 0);
      counter.setAttribute("data-countdown", String(left));
      counter.textContent = String(left);
    });
  }, 1000);
})();
