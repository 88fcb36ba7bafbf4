/* Baton loader: the one file a site owner's <script> tag loads.
 * It paints the launcher at once (plain DOM inside a shadow root, styled by baton.css),
 * then loads the wasm app beside it and hands over. No inline styles or scripts, so it
 * runs under `script-src 'self' 'wasm-unsafe-eval'; style-src 'self'`.
 * Options (attributes on the script tag): data-server="https://chat.example.com" (default:
 * where this script came from), data-title="Support".
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__batonLoaded) return;
  window.__batonLoaded = true;
  var base = script.src.replace(/[^/]*$/, "");
  var server = script.getAttribute("data-server") || new URL(base).origin;
  var title = script.getAttribute("data-title") || "Chat";

  function start() {
    var host = document.createElement("div");
    host.id = "baton-widget";
    var root = host.attachShadow({ mode: "open" });
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "baton.css";
    root.appendChild(css);
    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "baton-launcher";
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("data-placeholder", "");
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", "M4 4h16v12H7l-3 3z");
    svg.appendChild(path);
    launcher.appendChild(svg);
    var wantOpen = false;
    launcher.addEventListener("click", function () {
      wantOpen = true;
      launcher.setAttribute("aria-busy", "true");
    });
    root.appendChild(launcher);
    document.body.appendChild(host);

    import(base + "baton-widget.js")
      .then(function (m) {
        return m.default({ module_or_path: base + "baton-widget_bg.wasm" }).then(function () {
          // The app replaces this launcher once the site owner's texts are in (and opens
          // if it was clicked by then).
          m.mount(root, server, title, wantOpen);
        });
      })
      .catch(function (e) {
        launcher.setAttribute("aria-label", "Chat is unavailable");
        launcher.disabled = true;
        console.error("Baton: could not load the chat widget", e);
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
