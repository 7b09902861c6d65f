//! Builds the first-party plugins in `plugins/` for `wasm32-wasip2` and embeds the bundled ones.
//!
//! The plugins are their own cargo workspace, built by a nested `cargo build` into
//! `<target>/wasm-plugins` (as wasmtime's own test-programs do). Every direct child of
//! `plugins/` that has a `plugin.toml` is bundled into the binary; `plugins/fixtures/*` are
//! built too (tests load them from disk) but never bundled.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    let target_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let wasm_target_dir = target_root.join("wasm-plugins");

    watch(&plugins);
    watch(&root.join("plugin-sdk"));
    println!("cargo:rerun-if-changed={}", plugins.join(".cargo/config.toml").display());

    ensure_wasm_target();

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args(["build", "--release", "--locked", "--target", WASM_TARGET, "--target-dir"])
        .arg(&wasm_target_dir);
    for var in
        ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS"]
    {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("failed to run cargo to build the wasm plugins");
    if !status.success() {
        panic!("building the plugins in {} for {WASM_TARGET} failed (see the output above)", plugins.display());
    }
    let out_wasm = wasm_target_dir.join(WASM_TARGET).join("release");

    let mut bundled = String::from(
        "/// First-party plugins embedded in the binary: (folder name, plugin.toml, component bytes).\n\
         pub static BUNDLED: &[(&str, &str, &[u8])] = &[\n",
    );
    let mut entries: Vec<_> = std::fs::read_dir(&plugins).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for dir in entries {
        let manifest = dir.join("plugin.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).unwrap();
        let wasm_name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("wasm").map(str::trim).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{} has no `wasm = \"…\"` key", manifest.display()));
        let wasm = out_wasm.join(&wasm_name);
        assert!(wasm.is_file(), "{} names {wasm_name}, which the build did not produce", manifest.display());
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        writeln!(bundled, "    ({name:?}, include_str!({:?}), include_bytes!({:?})),", manifest, wasm).unwrap();
    }
    bundled.push_str("];\n");
    writeln!(
        bundled,
        "/// Where the build put every plugin component, fixtures included (used by tests).\n\
         pub const BUILD_DIR: &str = {:?};",
        out_wasm
    )
    .unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(out, bundled).unwrap();
}

/// Re-run when any source of the plugins or the SDK changes (build outputs excluded).
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Make sure the standard library for wasm32-wasip2 is installed; install it with rustup when not.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_ref().is_some_and(|d| d.exists()) {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with `rustup target add {WASM_TARGET}`");
    let ok = Command::new("rustup").args(["target", "add", WASM_TARGET]).status().is_ok_and(|s| s.success());
    if !ok {
        panic!(
            "Easel builds its bundled plugins for {WASM_TARGET}, whose standard library is missing.\n\
             Install it with:\n\n    rustup target add {WASM_TARGET}\n"
        );
    }
}
