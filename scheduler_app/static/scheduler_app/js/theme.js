/* Apply a remembered light/dark choice before the page paints (no flash). Without a
   remembered choice Pico follows the system (prefers-color-scheme). */
(function () {
  var theme = null;
  try { theme = window.localStorage.getItem("tempora-theme"); } catch (e) { /* storage off */ }
  if (theme === "light" || theme === "dark") {
    document.documentElement.setAttribute("data-theme", theme);
  }
})();
