/* Tempora console: the little the server cannot do. Every text from the server is written
   with textContent, never innerHTML, so a job called <img src=x onerror=...> stays text. */
(function () {
  "use strict";

  var body = document.body;
  var THEME_KEY = "tempora-theme";
  var ZONE_COOKIE = "tempora_tz";

  // Theme: follow the system until toggled; toggling back to the system's choice forgets it.
  var systemDark = window.matchMedia("(prefers-color-scheme: dark)");
  function effectiveTheme() {
    return document.documentElement.getAttribute("data-theme") || (systemDark.matches ? "dark" : "light");
  }
  function showTheme() {
    var dark = effectiveTheme() === "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", dark ? "true" : "false");
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-theme-toggle]");
    if (!button) return;
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    var system = systemDark.matches ? "dark" : "light";
    try {
      if (next === system) window.localStorage.removeItem(THEME_KEY);
      else window.localStorage.setItem(THEME_KEY, next);
    } catch (e) { /* storage off: the choice lasts for this page */ }
    document.documentElement.setAttribute("data-theme", next);
    showTheme();
  });
  systemDark.addEventListener("change", showTheme);
  showTheme();

  // The viewer's zone: remembered from the browser on the first visit (the footer can change it).
  if (document.cookie.split("; ").every(function (c) { return c.indexOf(ZONE_COOKIE + "=") !== 0; })) {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) document.cookie = ZONE_COOKIE + "=" + zone + "; path=/; max-age=31536000; samesite=lax";
    } catch (e) { /* old browser: the server's zone */ }
  }

  // Toasts --------------------------------------------------------------------------
  var toasts = document.getElementById("toasts");
  function dismissLater(toast, level) {
    window.setTimeout(function () { toast.remove(); }, level === "error" ? 12000 : 6000);
  }
  function showToast(message, level) {
    level = level || "success";
    var toast = document.createElement("div");
    toast.className = "toast toast-" + level;
    if (level === "error") toast.setAttribute("role", "alert");
    var text = document.createElement("span");
    text.textContent = String(message);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "×");
    close.textContent = "×";
    toast.appendChild(text);
    toast.appendChild(close);
    toasts.appendChild(toast);
    dismissLater(toast, level);
  }
  toasts.querySelectorAll(".toast").forEach(function (toast) {
    dismissLater(toast, toast.classList.contains("toast-error") ? "error" : "success");
  });
  toasts.addEventListener("click", function (event) {
    var close = event.target.closest(".toast-close");
    if (close) close.parentElement.remove();
  });
  body.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message || "", detail.level);
  });
  body.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    // A refusal that carries its own reason (a "toast" in HX-Trigger) has shown it already.
    if ((event.detail.xhr.getResponseHeader("HX-Trigger") || "").indexOf('"toast"') !== -1) return;
    var key = status === 404 ? "textNotFound" : status === 403 ? "textForbidden" : "textError";
    showToast(body.dataset[key], "error");
  });
  body.addEventListener("htmx:sendError", function () { showToast(body.dataset.textOffline, "error"); });

  // Confirmation: a real dialog instead of window.confirm (hx-confirm on the element).
  var dialog = document.getElementById("confirm-dialog");
  body.addEventListener("htmx:confirm", function (event) {
    if (!event.detail.question || !dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    var opener = document.activeElement;
    dialog.querySelector("#confirm-question").textContent = event.detail.question;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector("[data-answer=no]").focus();
    dialog.onclose = function () {
      if (dialog.returnValue === "yes") event.detail.issueRequest(true);
      else if (opener && opener.focus) opener.focus();
    };
  });
  if (dialog) {
    dialog.addEventListener("click", function (event) {
      var answer = event.target.closest("[data-answer]");
      if (answer) dialog.close(answer.dataset.answer);
      else if (event.target === dialog) dialog.close("no");  // a click on the backdrop
    });
  }

  // Loading: a bar for any request but a poll, and a spinner on the button that asked.
  var pending = 0;
  function isPoll(detail) { return !detail.requestConfig || !detail.requestConfig.triggeringEvent; }
  body.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute("data-poll") && isPoll(event.detail)) {
      // Never redraw what someone is using: a focused control, an open dialog, a hidden tab.
      if (document.hidden || (dialog && dialog.open) || elt.contains(document.activeElement) && document.activeElement !== body) {
        event.preventDefault();
      }
      return;
    }
    pending += 1;
    body.classList.add("is-loading");
    var submitter = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent &&
      event.detail.requestConfig.triggeringEvent.submitter;
    var busy = submitter || (elt.matches("button") ? elt : null);
    if (busy) {
      busy.setAttribute("aria-busy", "true");
      event.detail.busyButton = busy;
    }
  });
  body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.busyButton) event.detail.busyButton.removeAttribute("aria-busy");
    document.querySelectorAll("[aria-busy=true]").forEach(function (b) {
      if (b === event.detail.elt || b.closest("form") === event.detail.elt) b.removeAttribute("aria-busy");
    });
    if (event.detail.elt.hasAttribute("data-poll") && isPoll(event.detail)) return;
    pending = Math.max(0, pending - 1);
    if (!pending) body.classList.remove("is-loading");
  });

  // Relative times ("in 4 min") stay current; the words come from <body data-*>.
  var units = {};
  try { units = JSON.parse(body.dataset.units || "{}"); } catch (e) { units = {}; }
  function span(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    if (seconds < 60) return seconds + " " + units.s;
    if (seconds < 3600) {
      var m = Math.floor(seconds / 60), s = seconds % 60;
      return m < 10 && s ? m + " " + units.min + " " + s + " " + units.s : m + " " + units.min;
    }
    if (seconds < 86400) {
      var h = Math.floor(seconds / 3600), mm = Math.floor((seconds % 3600) / 60);
      return mm ? h + " " + units.h + " " + mm + " " + units.min : h + " " + units.h;
    }
    var d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600);
    return hh ? d + " " + units.d + " " + hh + " " + units.h : d + " " + units.d;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var seconds = (at - now) / 1000;
      var text = Math.abs(seconds) < 1 ? body.dataset.textNow
        : (seconds > 0 ? body.dataset.textIn : body.dataset.textAgo).replace("%(time)s", span(seconds));
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("overdue", seconds < -5);
    });
  }
  window.setInterval(tick, 1000);

  // Small helpers ----------------------------------------------------------------------
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("select[data-autosubmit]")) target.form.submit();
    if (target.matches("[data-check-all]")) {
      var scope = target.closest("table");
      scope.querySelectorAll("tbody input[type=checkbox]").forEach(function (box) { box.checked = target.checked; });
    }
  });
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-close-panel]");
    if (close) {
      var panel = close.closest("#day-panel");
      if (panel) panel.replaceChildren();
    }
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) event.target.select();
  });
  // "/" jumps to the page's search box.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (document.activeElement && document.activeElement.tagName) || "";
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(tag) || document.activeElement.isContentEditable) return;
    var search = document.querySelector("[data-search-shortcut]");
    if (search) { event.preventDefault(); search.focus(); }
  });
  // The job form tells the preview which input changed, so the server knows which way to
  // sync the cron builder (pickers → expression, or expression → pickers).
  function trackSource(event) {
    var form = event.target.form;
    if (!form || form.id !== "job-form" || !event.target.name) return;
    var source = form.querySelector("input[name=_source]");
    if (source) source.value = event.target.name;
  }
  document.addEventListener("input", trackSource, true);
  document.addEventListener("change", trackSource, true);
  // A day opened from the month grid takes the focus, so keyboard users land on it.
  body.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.elt && event.detail.elt.matches && event.detail.elt.matches(".day-link")) {
      var panel = document.getElementById("day-panel");
      if (panel) panel.focus();
    }
  });
})();
