/* Baton loader: the one file a site owner's <script> tag loads.
 * It paints the launcher at once (plain DOM inside a shadow root, styled by baton.css),
 * then loads the wasm app beside it and hands over. No inline styles or scripts, so it
 * runs under `script-src 'self' 'wasm-unsafe-eval'; style-src 'self'`.
 * Options (attributes on the script tag): data-server="https://chat.example.com" (default:
 * where this script came from), data-title="Support", data-locale="de" (default: the
 * browser's language; the server answers with its closest texts and their direction).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__batonLoaded) return;
  window.__batonLoaded = true;
  var base = script.src.replace(/[^/]*$/, "");
  var server = script.getAttribute("data-server") || new URL(base).origin;
  var title = script.getAttribute("data-title") || "Chat";
  var chosen = script.getAttribute("data-locale");
  var locale = chosen || navigator.language || "";
  // The two labels needed before (or without) the site's texts, in the built-in languages.
  var own = {
    de: ["Chat öffnen", "Chat ist nicht verfügbar"],
    ar: ["فتح الدردشة", "الدردشة غير متاحة"]
  }[locale.split(/[-_]/)[0].toLowerCase()] || ["Open chat", "Chat is unavailable"];

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
    launcher.setAttribute("aria-label", own[0]);
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

    // The site owner's texts (the app has none of its own), fetched while the wasm loads; a
    // network error, 429 or 5xx is tried twice more (a 403 or 404 will not change).
    function texts(tries) {
      return fetch(server + "/api/v1/widget?locale=" + encodeURIComponent(locale)).then(function (r) {
        if (r.ok) return r.text();
        var e = new Error("texts: " + r.status);
        e.final = r.status < 500 && r.status !== 429;
        throw e;
      }).catch(function (e) {
        if (tries <= 1 || e.final) throw e;
        return new Promise(function (ok) { setTimeout(ok, 1500); }).then(function () {
          return texts(tries - 1);
        });
      });
    }
    // `chosen`: the page named its language, so the bot answers in it too (a browser's
    // language is only a default: the bot follows what the visitor writes).
    var settings = texts(3).then(function (t) {
      var s = JSON.parse(t);
      s.chosen = !!chosen;
      return JSON.stringify(s);
    });
    settings.then(function (t) {
      var s = JSON.parse(t);
      if (s.texts.open_chat) launcher.setAttribute("aria-label", s.texts.open_chat);
      // The texts' language and direction, for screen readers and right-to-left layout.
      if (s.locale) host.lang = s.locale;
      host.dir = s.dir || "ltr";
    }).catch(function () {});

    Promise.all([import(base + "baton-widget.js"), settings])
      .then(function (loaded) {
        var m = loaded[0];
        return m.default({ module_or_path: base + "baton-widget_bg.wasm" }).then(function () {
          m.mount(root, server, title, wantOpen, loaded[1]);
          launcher.remove();
          // Preview mode, for a site owner's rehearsal page: force any state from the page.
          if (script.hasAttribute("data-preview")) window.batonPreview = m.preview;
        });
      })
      .catch(function (e) {
        launcher.setAttribute("aria-label", own[1]);
        launcher.disabled = true;
        console.error("Baton: could not load the chat widget", e);
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
