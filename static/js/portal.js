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

  // -- After htmx swaps: what screen readers hear, and where the focus goes. ----------------------

  // A live region that was not in the page before a change is seldom read out, and every swap
  // brings new elements; so one polite region (#announcer, kept across swaps by hx-preserve)
  // speaks for them. An element marked data-announce="key" is read out when a swap changes its
  // text (a domain check, provisioning, an import's progress, a list's count), at most every
  // QUIET_MS while its region polls itself and always once it stops. A sentence with a ticking
  // countdown is left out. The words are taken away after SPOKEN_MS, once read, so that nobody
  // reading the page later finds them at its end.
  var QUIET_MS = 10000, SPOKEN_MS = 7000;
  var said = {}, spokenAt = {}, clearing = null;

  function textOf(element) { return element.textContent.replace(/\s+/g, " ").trim(); }

  function statusText(element) {
    var copy = element.cloneNode(true);
    copy.querySelectorAll("[data-countdown]").forEach(function (counter) {
      (counter.parentElement && counter.parentElement !== copy ? counter.parentElement : counter).remove();
    });
    return textOf(copy);
  }

  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    if (root.matches && root.matches(selector)) { found.unshift(root); }
    return found;
  }

  function changedStatuses(root, polling) {
    var changed = [], now = Date.now();
    within(root, "[data-announce]").forEach(function (element) {
      var key = element.getAttribute("data-announce"), text = statusText(element);
      if (!text || said[key] === text || (polling && now - (spokenAt[key] || 0) < QUIET_MS)) { return; }
      changed.push(text);
      said[key] = text;
      spokenAt[key] = now;
    });
    return changed;
  }

  function announce(messages) {
    var region = document.getElementById("announcer");
    if (!region || !messages.length) { return; }
    region.textContent = "";
    clearTimeout(clearing);
    // Emptied first, so that the same words said again are read again.
    setTimeout(function () { region.textContent = messages.join(" "); }, 100);
    clearing = setTimeout(function () { region.textContent = ""; }, SPOKEN_MS);
  }

  // Focus: when a swap removes the element that had it, it goes to the first field the server
  // marked invalid; else, on a new page, to its flash messages (what the action did) or its heading;
  // within a part of the page, to the same control in the new content (htmx already does this for
  // one with an id), else, from a pager's link, to the pager, else to the page's heading. Never left
  // on the page's body.
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), " +
                  "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  var lostFocus = null;

  function signature(element) {
    return [element.tagName, element.getAttribute("href") || "", element.getAttribute("name") || "",
            element.getAttribute("value") || "", textOf(element)].join("|");
  }

  function focusOn(element) {
    if (!element.matches(FOCUSABLE) && !element.hasAttribute("tabindex")) { element.setAttribute("tabindex", "-1"); }
    element.focus({preventScroll: element.getBoundingClientRect().top >= 0 &&
                                  element.getBoundingClientRect().bottom <= window.innerHeight});
  }

  // A boosted page swaps the body in and leaves <html> alone: its language comes with the answer's
  // Content-Language, so <html lang> stays that of the page shown (a log-in may change it).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr, language = xhr && xhr.getResponseHeader("Content-Language");
    if (event.detail.boosted && language && /^[a-z]{2,3}(-[A-Za-z0-9]+)*$/.test(language)) {
      document.documentElement.lang = language;
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement, target = event.detail.target;
    lostFocus = null;
    if (active && active !== document.body && target && target.contains(active)) {
      lostFocus = {signature: signature(active), paging: !!active.closest("nav.pager")};
    }
  });

  function swappedRegion(target) {
    if (target && target.isConnected) { return target; }
    return target && target.id ? document.getElementById(target.id) : null;
  }

  function settleFocus(region) {
    var lost = lostFocus, active = document.activeElement;
    lostFocus = null;
    if (!lost || (active && active !== document.body && active.isConnected)) { return; }
    var invalid = region.querySelector("[aria-invalid='true']");
    if (invalid) { focusOn(invalid); return; }
    var same = region === document.body ? [] : within(region, FOCUSABLE).filter(function (element) {
      return signature(element) === lost.signature;
    });
    if (same.length) { focusOn(same[0]); return; }
    // A pager's link gone (the last page has no "Next"): the focus stays in the pager, by the rows
    // just shown, on its other link, else on the count it announces.
    var pager = lost.paging && region !== document.body ? within(region, "nav.pager")[0] : null;
    if (pager) { focusOn(within(pager, FOCUSABLE)[0] || pager.querySelector("[data-announce]") || pager); return; }
    var flashes = region === document.body ? document.querySelector("main .flashes") : null;
    if (flashes) { focusOn(flashes); return; }
    var heading = document.querySelector("main h1");
    if (heading) { focusOn(heading); }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var region = swappedRegion(event.detail.target);
    if (!region) { return; }
    if (region === document.body) {
      said = {};
      spokenAt = {};
      changedStatuses(region, false);
    } else {
      announce(changedStatuses(region, region.hasAttribute("hx-trigger") && /\bload\b/.test(region.getAttribute("hx-trigger"))));
    }
    settleFocus(region);
  });

  // A table too wide for the screen scrolls in its own box (.table-scroll). When nothing in the box
  // takes the focus, the box itself does, as a region named by the heading above it, so that the
  // keyboard can scroll it too.
  function headingBefore(element) {
    var headings = Array.prototype.slice.call(document.querySelectorAll("main h1, main h2, main h3"));
    return headings.filter(function (heading) {
      return heading.compareDocumentPosition(element) & Node.DOCUMENT_POSITION_FOLLOWING;
    }).pop();
  }

  function reachableScrollers() {
    document.querySelectorAll(".table-scroll").forEach(function (box) {
      var needed = box.scrollWidth > box.clientWidth && !box.querySelector(FOCUSABLE);
      if (needed && !box.hasAttribute("tabindex")) {
        var heading = headingBefore(box);
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (heading) {
          heading.id = heading.id || "heading-" + Math.random().toString(36).slice(2);
          box.setAttribute("aria-labelledby", heading.id);
        }
      } else if (!needed && box.getAttribute("tabindex") === "0") {
        ["tabindex", "role", "aria-labelledby"].forEach(function (name) { box.removeAttribute(name); });
      }
    });
  }

  // Lists on a phone: a table marked "stacked" shows each row as a card, each cell under its
  // column's name (CSS, under 40rem); the names are copied here from the header into data-label.
  // Without this file the table scrolls sideways in its box, as any wide table does.
  function labelStackedCells(root) {
    (root || document).querySelectorAll("table.stacked").forEach(function (table) {
      var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (heading) {
        return textOf(heading).replace(/\s*[▲▼]$/, "");  // a sorted column's arrow is for the header
      });
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, index) {
          if (names[index] && !cell.hasAttribute("colspan")) { cell.setAttribute("data-label", names[index]); }
        });
      });
      table.classList.add("labelled");
    });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(reachableScrollers, 150);
  });
  document.addEventListener("htmx:afterSettle", function () { labelStackedCells(); reachableScrollers(); });
  document.addEventListener("DOMContentLoaded", function () {
    changedStatuses(document.body, false);
    labelStackedCells();
    reachableScrollers();
  });
})();
