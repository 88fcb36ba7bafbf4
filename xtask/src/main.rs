//! The project's driver: `cargo xtask demo`, `cargo xtask test`, `cargo xtask bench`.
//!
//! Every command first installs what is missing (see `../shared/design/toolchain.md` for why
//! each pin is what it is): the wasm32 target, trunk 0.21.14, wasm-bindgen-cli at exactly the
//! Cargo.lock version, binaryen 132 from npm, and for tests Debian's chromium and
//! chromium-driver (installed with apt-get when running as root; otherwise xtask stops and
//! prints the command to run).

mod services;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const TRUNK_VERSION: &str = "0.21.14";
const BINARYEN_VERSION: &str = "132";
/// esbuild minifies the widget's JavaScript (wasm-bindgen's glue and the loader) after Trunk.
const ESBUILD_VERSION: &str = "0.25.0";
/// twiggy shows where the wasm bytes go (`cargo xtask size` and `bench` only).
const TWIGGY_VERSION: &str = "0.8.0";
/// axe-core, the accessibility checker the browser tests inject into pages.
const AXE_VERSION: &str = "4.10.3";
const AXE_DIR: &str = ".tools/axe";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const USAGE: &str = "usage: cargo xtask <command>

  demo [--listen ADDR]  install what is missing, build widget and console, run the server
                        (default 127.0.0.1:8080) and print the demo and console URLs
  test                  install what is missing and run every test layer: fmt, clippy (native
                        and wasm32), native unit and integration tests, wasm-bindgen tests in
                        headless Chromium, and the browser end-to-end test
  bench                 print the widget's sizes (as `size`), run the widget benchmark in
                        Chromium, then the server benchmark: Baton on SQLite and PostgreSQL
                        beside a bare axum relay
  size                  build the widget, print its raw, gzip and brotli sizes against the
                        budget and where its wasm bytes go (twiggy)";

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(),
        Some("size") => size(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root and the PATH under which the pinned tools are found.
struct Env {
    root: PathBuf,
    path: String,
    wasm_bindgen: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_owned()
}

impl Env {
    /// A command run from the repository root with the tools on PATH.
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.root)
            .env("PATH", &self.path)
            .env("TRUNK_TOOLS_WASM_BINDGEN", &self.wasm_bindgen);
        c
    }
}

fn show(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

pub(crate) fn run(c: &mut Command) -> Result {
    println!("$ {}", show(c));
    let _ = std::io::stdout().flush();
    let status = c
        .status()
        .map_err(|e| format!("cannot run `{}`: {e}", show(c)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(c)))
    }
}

/// The first line a tool prints for `--version`, if it runs at all.
fn version_of(env_path: &str, program: &str) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .env("PATH", env_path)
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    })
}

/// The version of `package` in Cargo.lock.
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    Some(lock[start..].split('"').next()?.to_owned())
}

/// The `[tools] wasm_bindgen` pin in a Trunk.toml.
fn trunk_pin(trunk_toml: &str) -> Option<&str> {
    let line = trunk_toml
        .lines()
        .find(|l| l.trim_start().starts_with("wasm_bindgen"))?;
    line.split('"').nth(1)
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs whatever is missing; `browser` adds Chromium and chromedriver.
fn setup(browser: bool) -> Result<Env> {
    let root = root();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let node_bin = root.join(".tools/node_modules/.bin");
    let path = std::env::join_paths(
        [node_bin.clone(), cargo_home.join("bin")]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .map_err(|e| e.to_string())?
    .to_string_lossy()
    .into_owned();

    let lock =
        std::fs::read_to_string(root.join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let wasm_bindgen =
        locked_version(&lock, "wasm-bindgen").ok_or("Cargo.lock has no wasm-bindgen")?;
    for trunk_toml in ["Trunk.toml", "crates/console/Trunk.toml"] {
        let text = std::fs::read_to_string(root.join(trunk_toml))
            .map_err(|e| format!("{trunk_toml}: {e}"))?;
        if trunk_pin(&text) != Some(wasm_bindgen.as_str()) {
            return Err(format!(
                "{trunk_toml} pins wasm_bindgen {:?} but Cargo.lock has {wasm_bindgen}; make them equal",
                trunk_pin(&text)
            ));
        }
    }
    let env = Env {
        root,
        path,
        wasm_bindgen,
    };

    // The wasm target (rust-toolchain.toml names it; older rustups do not add it by themselves).
    let targets = env
        .cmd("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup: {e}"))?;
    if !String::from_utf8_lossy(&targets.stdout).contains("wasm32-unknown-unknown") {
        run(env
            .cmd("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"]))?;
    }

    if version_of(&env.path, "trunk").as_deref() != Some(&format!("trunk {TRUNK_VERSION}")) {
        println!("trunk {TRUNK_VERSION} is missing; installing it (about 7 minutes on 2 cores)");
        run(env
            .cmd("cargo")
            .args(["install", "trunk", "--version", TRUNK_VERSION, "--locked"]))?;
    }
    if version_of(&env.path, "wasm-bindgen").as_deref()
        != Some(&format!("wasm-bindgen {}", env.wasm_bindgen))
    {
        println!(
            "wasm-bindgen-cli {} is missing; installing it (about 3 minutes)",
            env.wasm_bindgen
        );
        // Without --locked: its lockfile pins a webpki-roots the registry no longer serves.
        run(env.cmd("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &env.wasm_bindgen,
        ]))?;
    }
    let has = |tool: &str, version: &str| {
        Command::new(node_bin.join(tool))
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version))
    };
    if !has("wasm-opt", &format!("version {BINARYEN_VERSION}")) || !has("esbuild", ESBUILD_VERSION)
    {
        if version_of(&env.path, "npm").is_none() {
            return Err(format!(
                "npm is needed to install binaryen {BINARYEN_VERSION} (wasm-opt) and esbuild {ESBUILD_VERSION}; install Node.js and npm, then rerun"
            ));
        }
        // npm's binaryen, not Debian's 108, which corrupts this wasm. One install for both:
        // an npm install without a package.json prunes what another one put beside it.
        run(env.cmd("npm").args([
            "install",
            "--prefix",
            ".tools",
            "--no-save",
            "--no-audit",
            "--no-fund",
            &format!("binaryen@{BINARYEN_VERSION}"),
            &format!("esbuild@{ESBUILD_VERSION}"),
        ]))?;
    }
    if browser {
        install_axe(&env)?;
    }
    if browser && !(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()) {
        if !is_root() {
            return Err("Chromium and chromedriver are missing. Run:\n  sudo apt-get update && sudo apt-get install -y chromium chromium-driver\nthen rerun `cargo xtask test`".into());
        }
        run(env.cmd("apt-get").arg("update"))?;
        run(env
            .cmd("apt-get")
            .args(["install", "-y", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    // Trunk builds with `cargo --offline`, so every crate must be downloaded first.
    run(env.cmd("cargo").args(["fetch", "--locked"]))?;
    Ok(env)
}

/// axe-core from npm, in its own prefix (an npm install without a package.json prunes what
/// another one put beside it).
fn install_axe(env: &Env) -> Result {
    let manifest = env
        .root
        .join(AXE_DIR)
        .join("node_modules/axe-core/package.json");
    let installed = std::fs::read_to_string(&manifest)
        .is_ok_and(|m| m.contains(&format!("\"version\": \"{AXE_VERSION}\"")));
    if installed {
        return Ok(());
    }
    if version_of(&env.path, "npm").is_none() {
        return Err(format!(
            "npm is needed to install axe-core {AXE_VERSION} for the accessibility checks; install Node.js and npm, then rerun"
        ));
    }
    run(env.cmd("npm").args([
        "install",
        "--prefix",
        AXE_DIR,
        "--no-save",
        "--no-audit",
        "--no-fund",
        &format!("axe-core@{AXE_VERSION}"),
    ]))
}

/// The axe-core script the browser tests inject.
fn axe_script(env: &Env) -> PathBuf {
    env.root
        .join(AXE_DIR)
        .join("node_modules/axe-core/axe.min.js")
}

fn build_widget(env: &Env) -> Result {
    run(env.cmd("trunk").args(["build", "--release"]))?;
    minify_wasm_names(env)?;
    // Trunk copies these as they are; the size budget counts them (minifying wasm-bindgen's
    // glue, the loader and the stylesheet saves about 2.5 KB brotli).
    for file in ["dist/baton-widget.js", "dist/baton.js", "dist/baton.css"] {
        let mut c = env.cmd("esbuild");
        c.args([file, "--minify", "--allow-overwrite", "--log-level=warning"])
            .arg(format!("--outfile={file}"));
        if file.ends_with("widget.js") {
            c.arg("--format=esm");
        }
        run(&mut c)?;
    }
    Ok(())
}

/// The wasm features the widget's wasm uses, for wasm-opt runs outside Trunk (twiggy cannot
/// read a module with all of them on).
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// The module wasm-bindgen's glue names the wasm's imports after.
const GLUE_MODULE: &str = "./baton-widget_bg.js";

/// Optimises the wasm again until it stops shrinking, renames its imports and exports to one
/// or two letters and rewrites the glue to match. wasm-bindgen names each import after its JavaScript function plus a hash
/// (`__wbg_removeEventListener_4e20bd5fac3de092`), and both files spell every name: the
/// short names save about 3 KB brotli. wasm-opt prints the old → new table as JSON.
fn minify_wasm_names(env: &Env) -> Result {
    let wasm = env.root.join("dist/baton-widget_bg.wasm");
    let glue_path = env.root.join("dist/baton-widget.js");
    // Trunk's one -Oz pass leaves some behind: optimising until nothing changes saves about
    // 0.5 KB brotli more (measured 2026-12-07: 117,050 → 116,540 B). A run of its own, as
    // `--converge` would repeat the renaming below and print its table twice.
    run(env
        .cmd("wasm-opt")
        .arg(&wasm)
        .args(WASM_FEATURES)
        .args(["-Oz", "--converge", "-o"])
        .arg(&wasm))?;
    let mut c = env.cmd("wasm-opt");
    c.arg(&wasm)
        .args(WASM_FEATURES)
        .arg("--minify-imports-and-exports-and-modules")
        .arg("-o")
        .arg(&wasm);
    println!("$ {}", show(&c));
    let out = c
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", show(&c)))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed ({}): {}",
            show(&c),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let table = String::from_utf8_lossy(&out.stdout);
    let table = &table[table.find('{').ok_or("wasm-opt printed no name table")?..];
    let glue = std::fs::read_to_string(&glue_path).map_err(|e| format!("{glue_path:?}: {e}"))?;
    let glue = rename_in_glue(&glue, table)?;
    std::fs::write(&glue_path, glue).map_err(|e| format!("{glue_path:?}: {e}"))
}

/// The glue with every import and export renamed as `table` (wasm-opt's JSON) says, and the
/// one import module (`"./baton-widget_bg.js"`) renamed to `a`. Names are replaced as whole
/// identifiers; an import the glue does not define is an error, as the page would fail to
/// load.
fn rename_in_glue(glue: &str, table: &str) -> Result<String> {
    let table: serde_json::Value =
        serde_json::from_str(table).map_err(|e| format!("wasm-opt's name table: {e}"))?;
    let rows = |key: &str| {
        table[key]
            .as_array()
            .cloned()
            .ok_or_else(|| format!("wasm-opt's name table has no {key}"))
    };
    // Imports are hashed names the glue spells only as its import object's keys; exports are
    // renamed only where the glue reads them off the instance (`wasm.mount`), as the glue's
    // own functions may share their names (`export function mount`).
    let mut names = std::collections::HashMap::new();
    let mut exports = std::collections::HashMap::new();
    let mut imports = vec![];
    for row in rows("imports")? {
        match row.as_array().map(|r| r.as_slice()) {
            Some([module, old, new]) if module == GLUE_MODULE => {
                let (old, new) = (old.as_str().unwrap_or(""), new.as_str().unwrap_or(""));
                names.insert(old.to_owned(), new.to_owned());
                imports.push(old.to_owned());
            }
            _ => return Err(format!("unexpected import in wasm-opt's name table: {row}")),
        }
    }
    for row in rows("exports")? {
        match row.as_array().map(|r| r.as_slice()) {
            Some([old, new]) => {
                exports.insert(
                    old.as_str().unwrap_or("").to_owned(),
                    new.as_str().unwrap_or("").to_owned(),
                );
            }
            _ => return Err(format!("unexpected export in wasm-opt's name table: {row}")),
        }
    }
    let key = format!("\"{GLUE_MODULE}\":");
    if glue.matches(&key).count() != 1 {
        return Err(format!(
            "the glue should name the import module {key} once; wasm-bindgen changed its output"
        ));
    }
    let glue = glue.replace(&key, "a:");
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut out = String::with_capacity(glue.len());
    let mut seen = std::collections::HashSet::new();
    let mut rest = glue.as_str();
    while let Some(start) = rest.find(is_ident) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        let renamed = match out.ends_with('.') {
            true => exports.get(word),
            false => names.get(word),
        };
        match renamed {
            Some(new) => {
                out.push_str(new);
                seen.insert(word);
            }
            None => out.push_str(word),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    if let Some(missing) = imports.iter().find(|i| !seen.contains(i.as_str())) {
        return Err(format!(
            "the glue does not define the wasm's import {missing}; wasm-bindgen changed its output"
        ));
    }
    Ok(out)
}

fn build_console(env: &Env) -> Result {
    run(env
        .cmd("trunk")
        .args(["build", "--release"])
        .current_dir(env.root.join("crates/console")))
}

fn demo(args: &[String]) -> Result {
    let env = setup(false)?;
    build_widget(&env)?;
    build_console(&env)?;
    let mut server = env.cmd("cargo");
    server
        .args(["run", "--quiet", "-p", "baton-server", "--"])
        .args(args);
    println!("\nStarting Baton; Ctrl-C stops it.\n");
    run(&mut server)
}

/// One named step of `cargo xtask test`.
type Step<'a> = (&'a str, Box<dyn FnOnce() -> Result + 'a>);

/// Runs `steps` in order, timing each, and prints a summary.
fn timed(steps: Vec<Step<'_>>) -> Result {
    let mut times: Vec<(&str, Duration)> = vec![];
    let mut result = Ok(());
    for (name, step) in steps {
        println!("\n==> {name}");
        let start = Instant::now();
        result = step();
        times.push((name, start.elapsed()));
        if result.is_err() {
            break;
        }
    }
    let mut summary = String::from("\nxtask timings:\n");
    for (name, t) in &times {
        let _ = writeln!(summary, "  {:>7.1}s  {name}", t.as_secs_f64());
    }
    let _ = writeln!(
        summary,
        "  {:>7.1}s  total",
        times.iter().map(|(_, t)| t.as_secs_f64()).sum::<f64>()
    );
    println!("{summary}");
    result
}

fn test() -> Result {
    let start = Instant::now();
    let env = setup(true)?;
    let services = services::start()?;
    println!("set-up took {:.1}s", start.elapsed().as_secs_f64());
    let e = &env;
    let with_services = |c: &mut Command| {
        for (k, v) in &services.env {
            c.env(k, v);
        }
    };
    let widget_dir = env.root.join("dist");
    let console_dir = env.root.join("crates/console/dist");
    timed(vec![
        (
            "cargo fmt --check",
            Box::new(|| run(e.cmd("cargo").args(["fmt", "--all", "--", "--check"]))),
        ),
        (
            "clippy (native)",
            Box::new(|| {
                run(e.cmd("cargo").args([
                    "clippy",
                    "--locked",
                    "-p",
                    "baton-protocol",
                    "-p",
                    "baton-client",
                    "-p",
                    "baton-server",
                    "-p",
                    "baton-e2e",
                    "-p",
                    "baton-bench",
                    "-p",
                    "xtask",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        ),
        (
            "clippy (wasm32)",
            Box::new(|| {
                run(e.cmd("cargo").args([
                    "clippy",
                    "--locked",
                    "--target",
                    "wasm32-unknown-unknown",
                    "-p",
                    "baton-widget",
                    "-p",
                    "baton-console",
                    "-p",
                    "baton-browser",
                    "-p",
                    "baton-client",
                    "-p",
                    "baton-protocol",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        ),
        (
            "native unit and integration tests (SQLite, PostgreSQL, in-process bus, NATS)",
            Box::new(|| {
                let mut c = e.cmd("cargo");
                c.args([
                    "test",
                    "--locked",
                    "-p",
                    "baton-protocol",
                    "-p",
                    "baton-client",
                    "-p",
                    "baton-server",
                    "-p",
                    "baton-bench",
                    "-p",
                    "xtask",
                ]);
                with_services(&mut c);
                run(&mut c)
            }),
        ),
        ("build widget (release)", Box::new(|| build_widget(e))),
        ("build console (release)", Box::new(|| build_console(e))),
        (
            "wasm-bindgen tests in headless Chromium",
            Box::new(|| {
                run(e
                    .cmd("cargo")
                    .args([
                        "test",
                        "--locked",
                        "-p",
                        "baton-widget",
                        "--target",
                        "wasm32-unknown-unknown",
                    ])
                    .env("CHROMEDRIVER", CHROMEDRIVER)
                    .env("WASM_BINDGEN_TEST_TIMEOUT", "120"))
            }),
        ),
        (
            "browser end-to-end tests",
            Box::new(|| {
                run(e
                    .cmd("cargo")
                    .args([
                        "test",
                        "--locked",
                        "-p",
                        "baton-e2e",
                        "--",
                        "--test-threads=1",
                    ])
                    .env("CHROMEDRIVER", CHROMEDRIVER)
                    .env("CHROMIUM", CHROMIUM)
                    .env("BATON_WIDGET_DIR", &widget_dir)
                    .env("BATON_CONSOLE_DIR", &console_dir)
                    .env("BATON_AXE", axe_script(e)))
            }),
        ),
    ])
}

/// Reference figures from `../shared/research/peer-bundles.md` and the brief's quality bars.
const BUDGET_TOTAL_BROTLI: usize = 120 * 1024;
const BUDGET_LOADER_BROTLI: usize = 4 * 1024;
const LIGHTEST_PEER_BROTLI: usize = 160 * 1024;

fn gzip_len(data: &[u8]) -> usize {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("in-memory write");
    enc.finish().expect("in-memory write").len()
}

fn brotli_len(data: &[u8]) -> usize {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        w.write_all(data).expect("in-memory write");
    }
    out.len()
}

fn bench() -> Result {
    // Chromium too: the widget benchmark runs the widget in it.
    let env = setup(true)?;
    widget_size(&env)?;
    // The server: Baton against a bare axum WebSocket relay, on SQLite and PostgreSQL.
    run(env.cmd("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "baton-server",
        "-p",
        "baton-bench",
    ]))?;
    let release = env.root.join("target/release");
    run(env
        .cmd(&release.join("baton-bench").to_string_lossy())
        .arg("widget")
        .arg("--server")
        .arg(release.join("baton-server"))
        .arg("--widget-dir")
        .arg(env.root.join("dist"))
        .args(["--chromedriver", CHROMEDRIVER, "--chromium", CHROMIUM]))?;
    // The agent console: one agent with 20 chats, 10 and 500 visitors queued.
    build_console(&env)?;
    run(env
        .cmd(&release.join("baton-bench").to_string_lossy())
        .arg("console")
        .arg("--server")
        .arg(release.join("baton-server"))
        .arg("--console-dir")
        .arg(env.root.join("crates/console/dist"))
        .args(["--chromedriver", CHROMEDRIVER, "--chromium", CHROMIUM]))?;
    let services = services::start()?;
    let postgres = services
        .env
        .iter()
        .find(|(k, _)| *k == "BATON_TEST_POSTGRES")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    run(env
        .cmd(&release.join("baton-bench").to_string_lossy())
        .arg("run")
        .arg("--server")
        .arg(release.join("baton-server"))
        .args(["--postgres", &postgres]))
}

/// `cargo xtask size`: builds the widget and prints what a host page downloads.
fn size() -> Result {
    let env = setup(false)?;
    widget_size(&env)
}

/// Builds the widget, prints its raw, gzip and brotli sizes against the budget, and where the
/// wasm bytes go (by crate, and the largest functions) so the next cut is obvious.
fn widget_size(env: &Env) -> Result {
    build_widget(env)?;
    let shipped = [
        "baton.js",
        "baton-widget.js",
        "baton-widget_bg.wasm",
        "baton.css",
    ];
    println!("\nWidget size (what a host page downloads):\n");
    println!(
        "  {:<24} {:>10} {:>10} {:>10}",
        "file", "raw", "gzip", "brotli"
    );
    let (mut raw, mut gz, mut br) = (0, 0, 0);
    let mut loader_br = 0;
    for name in shipped {
        let data = std::fs::read(env.root.join("dist").join(name))
            .map_err(|e| format!("dist/{name}: {e}"))?;
        let (g, b) = (gzip_len(&data), brotli_len(&data));
        println!("  {name:<24} {:>10} {g:>10} {b:>10}", data.len());
        raw += data.len();
        gz += g;
        br += b;
        if name == "baton.js" {
            loader_br = b;
        }
    }
    println!("  {:<24} {raw:>10} {gz:>10} {br:>10}", "total");
    let kb = |n: usize| n as f64 / 1024.0;
    println!(
        "\n  total brotli {:.1} KB = {:.2}x the 120 KB budget, {:.2}x the lightest peer (160 KB)",
        kb(br),
        br as f64 / BUDGET_TOTAL_BROTLI as f64,
        br as f64 / LIGHTEST_PEER_BROTLI as f64
    );
    println!(
        "  loader brotli {:.1} KB = {:.2}x the 4 KB budget",
        kb(loader_br),
        loader_br as f64 / BUDGET_LOADER_BROTLI as f64
    );
    wasm_breakdown(env)
}

/// Where the widget's wasm bytes go, from twiggy (installed on first use): the app's wasm is
/// optimised again with its names kept (`wasm-opt -Oz -g`), then grouped by crate.
fn wasm_breakdown(env: &Env) -> Result {
    if version_of(&env.path, "twiggy").is_none() {
        println!("twiggy is missing; installing it (about 3 minutes)");
        run(env
            .cmd("cargo")
            .args(["install", "twiggy", "--version", TWIGGY_VERSION, "--locked"]))?;
    }
    let out = env.root.join("target/size");
    let _ = std::fs::remove_dir_all(&out);
    run(env
        .cmd("wasm-bindgen")
        .args(["--target", "web", "--keep-debug", "--out-dir"])
        .arg(&out)
        .arg("target/wasm32-unknown-unknown/wasm-release/baton_widget.wasm"))?;
    let named = out.join("named.wasm");
    run(env
        .cmd("wasm-opt")
        .args(["-Oz", "-g"])
        .args(WASM_FEATURES)
        .arg(out.join("baton_widget_bg.wasm"))
        .arg("-o")
        .arg(&named))?;
    let csv = env
        .cmd("twiggy")
        .args(["top", "-n", "1000000", "--format", "csv"])
        .arg(&named)
        .output()
        .map_err(|e| format!("twiggy: {e}"))?;
    if !csv.status.success() {
        return Err(format!(
            "twiggy failed: {}",
            String::from_utf8_lossy(&csv.stderr).trim()
        ));
    }
    let csv = String::from_utf8_lossy(&csv.stdout);
    let items = twiggy_items(&csv);
    let total: usize = items.iter().map(|(_, n)| n).sum();
    let mut by_crate: Vec<(String, usize)> = vec![];
    for (name, n) in &items {
        let c = crate_of(name);
        match by_crate.iter_mut().find(|(k, _)| *k == c) {
            Some((_, sum)) => *sum += n,
            None => by_crate.push((c, *n)),
        }
    }
    by_crate.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!("\nWhere the wasm bytes go (raw, before compression; names kept for this count):\n");
    for (c, n) in by_crate.iter().take(14) {
        println!("  {n:>8} {:>5.1}%  {c}", 100.0 * *n as f64 / total as f64);
    }
    println!("\n  largest items:");
    for (name, n) in items.iter().take(12) {
        let short: String = name.chars().take(100).collect();
        println!("  {n:>8}  {short}");
    }
    Ok(())
}

/// twiggy's CSV rows as (name, bytes), largest first, without the name sections.
fn twiggy_items(csv: &str) -> Vec<(String, usize)> {
    let mut items = vec![];
    for line in csv.lines().skip(1) {
        // Name,ShallowSize,...: the name may be quoted and hold commas.
        let (name, rest) = match line.strip_prefix('"') {
            Some(q) => match q.find("\",") {
                Some(end) => (q[..end].replace("\"\"", "\""), &q[end + 2..]),
                None => continue,
            },
            None => match line.split_once(',') {
                Some((n, r)) => (n.to_owned(), r),
                None => continue,
            },
        };
        let Some(bytes) = rest.split(',').next().and_then(|b| b.parse::<usize>().ok()) else {
            continue;
        };
        if name.contains("section") {
            continue;
        }
        items.push((name, bytes));
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.1));
    items
}

/// The crate a wasm function belongs to, from its demangled name (serde's code however
/// it is reached counts as serde).
fn crate_of(name: &str) -> String {
    if name.contains("serde") && !name.starts_with("baton") {
        return "serde".into();
    }
    let n = name.trim_start_matches(['<', '&']);
    let n = n
        .strip_prefix("mut ")
        .or_else(|| n.strip_prefix("dyn "))
        .unwrap_or(n);
    let end = n
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(n.len());
    match &n[..end] {
        "" => "(other)".into(),
        c => c.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_locked_wasm_bindgen_version() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.1\"\n\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "trunk"), None);
    }

    #[test]
    fn the_trunk_pins_match_the_lockfile() {
        let root = root();
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let locked = locked_version(&lock, "wasm-bindgen").unwrap();
        for f in ["Trunk.toml", "crates/console/Trunk.toml"] {
            let text = std::fs::read_to_string(root.join(f)).unwrap();
            assert_eq!(trunk_pin(&text), Some(locked.as_str()), "{f}");
        }
    }

    #[test]
    fn wasm_items_are_grouped_by_crate() {
        let csv = "Name,ShallowSize,ShallowSizePercent,RetainedSize,RetainedSizePercent\n\
            \"\"\"function names\"\" subsection\",900,1,,\n\
            \"<tachys::view::Either<A,B> as tachys::Render>::build\",40,1,,\n\
            baton_client::json::Parser::value::h1,30,1,,\n\
            <&mut serde_json::de::Deserializer<R>>::x,20,1,,\n\
            data[3],10,1,,\n";
        let items = twiggy_items(csv);
        assert_eq!(items.len(), 4, "{items:?}");
        assert_eq!(items[0].1, 40);
        let crates: Vec<String> = items.iter().map(|(n, _)| crate_of(n)).collect();
        assert_eq!(crates, ["tachys", "baton_client", "serde", "data"]);
    }

    const TABLE: &str = r#"{
 "imports": [
  ["./baton-widget_bg.js", "__wbg_focus_1a2b", "a"],
  ["./baton-widget_bg.js", "__wbg_new_3c4d", "b"]
 ],
 "exports": [
  ["mount", "c"],
  ["__wbindgen_malloc", "d"]
 ]
}"#;

    #[test]
    fn the_glue_follows_the_renamed_imports_and_exports() {
        let glue = r#"function mount(e){return wasm.mount(e, wasm.__wbindgen_malloc)}
function imports(){return {"./baton-widget_bg.js":{__wbg_focus_1a2b:function(e){e.focus()},
__wbg_new_3c4d:function(){return new Object()},__wbg_new_3c4dx:1}}}
export{mount};"#;
        let out = rename_in_glue(glue, TABLE).unwrap();
        assert_eq!(
            out,
            r#"function mount(e){return wasm.c(e, wasm.d)}
function imports(){return {a:{a:function(e){e.focus()},
b:function(){return new Object()},__wbg_new_3c4dx:1}}}
export{mount};"#
        );
    }

    #[test]
    fn a_glue_that_lacks_an_import_or_its_module_is_refused() {
        let no_module = r#"{"other.js":{__wbg_focus_1a2b:1,__wbg_new_3c4d:2}}"#;
        assert!(
            rename_in_glue(no_module, TABLE)
                .unwrap_err()
                .contains("import module")
        );
        let no_import = r#"{"./baton-widget_bg.js":{__wbg_focus_1a2b:1}}"#;
        assert!(
            rename_in_glue(no_import, TABLE)
                .unwrap_err()
                .contains("__wbg_new_3c4d")
        );
    }

    #[test]
    fn compressed_sizes_are_smaller_for_repetitive_data() {
        let data = vec![b'a'; 10_000];
        assert!(gzip_len(&data) < 200);
        assert!(brotli_len(&data) < 100);
    }
}
