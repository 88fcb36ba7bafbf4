// Starts the console without an inline script, so it runs under script-src 'self'.
import init from "./baton-console.js";
init({ module_or_path: new URL("./baton-console_bg.wasm", import.meta.url) });
