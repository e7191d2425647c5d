/* The API docs are offline: ReDoc's side menu always draws Redocly's logo from their CDN,
   which the Content-Security-Policy refuses (a violation on every visit). An image from
   another origin is dropped before the browser asks for it, whether its source is set as a
   property (as React does here) or as an attribute; ReDoc then shows its text link alone. */
(function () {
  "use strict";
  function elsewhere(value) {
    var url = new URL(String(value), document.baseURI);
    return url.protocol !== "data:" && url.origin !== window.location.origin;
  }
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) { if (!elsewhere(value)) src.set.call(this, value); }
  });
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && elsewhere(value)) return;
    return setAttribute.apply(this, arguments);
  };
})();
