//! Builds the first-party plugins in `plugins/` for `wasm32-wasip2` and embeds the bundled ones.
//!
//! The plugins are their own cargo workspace, built by a nested `cargo build` into
//! `<target>/wasm-plugins` (as wasmtime's own test-programs do). Every direct child of
//! `plugins/` that has a `plugin.toml` is bundled into the binary; `plugins/fixtures/*` are
//! built too (tests load them from disk) but never bundled.
//!
//! It also embeds the plugin SDK crate (`plugin-sdk/`: sources, WIT, README, licence) with a
//! stand-alone `Cargo.toml` (workspace inheritance resolved) and the `Cargo.lock` entries it
//! needs, taken from `plugins/Cargo.lock`, so `easel plugin new` writes a crate that builds
//! anywhere with the versions the first-party plugins were tested with.

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
    println!("cargo:rerun-if-changed={}", root.join("Cargo.toml").display());
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
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("bundled.rs"), bundled).unwrap();
    embed_sdk(&root, &out_dir);
}

/// Write `sdk.rs`: the SDK crate's files, its stand-alone manifest and its lock entries.
fn embed_sdk(root: &Path, out_dir: &Path) {
    let sdk = root.join("plugin-sdk");
    let workspace: toml::Table = read_toml(&root.join("Cargo.toml"));
    let manifest: toml::Table = read_toml(&sdk.join("Cargo.toml"));
    let standalone = standalone_manifest(&manifest, &workspace);
    std::fs::write(out_dir.join("sdk-Cargo.toml"), standalone).unwrap();

    let mut files = vec![("Cargo.toml".to_string(), out_dir.join("sdk-Cargo.toml"))];
    sdk_files(&sdk, &sdk, &mut files);
    files.sort();
    let mut rs = String::from(
        "/// The plugin SDK crate as `easel plugin sdk` writes it: (path in the crate, contents).\n\
         pub static SDK_FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        writeln!(rs, "    ({rel:?}, include_bytes!({path:?})),").unwrap();
    }
    rs.push_str("];\n");

    let version = manifest["package"]["version"].as_str().map(str::to_string).unwrap_or_else(|| {
        workspace["workspace"]["package"]["version"].as_str().expect("a workspace version").to_string()
    });
    let lock_path = root.join("plugins/Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let closure = lock_closure(&read_toml(&lock_path), "easel-plugin-sdk");
    let packages = match prune_lock(out_dir, &files, &closure) {
        Ok(lock) => lock_closure(&lock.parse().expect("Cargo writes valid TOML"), "easel-plugin-sdk"),
        Err(why) => {
            println!("cargo:warning=new plugins get an unpruned Cargo.lock (Cargo will adjust it): {why}");
            closure
        }
    };
    writeln!(
        rs,
        "/// The SDK's version.\npub const SDK_VERSION: &str = {version:?};\n\
         /// `Cargo.lock` entries of the SDK and everything it depends on, as resolved for the\n\
         /// first-party plugins: (package name, `[[package]]` block), sorted as Cargo sorts them.\n\
         pub static SDK_LOCK: &[(&str, &str)] = &["
    )
    .unwrap();
    for (name, block) in packages {
        writeln!(rs, "    ({name:?}, {block:?}),").unwrap();
    }
    rs.push_str("];\n");
    std::fs::write(out_dir.join("sdk.rs"), rs).unwrap();
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.parse().unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The SDK crate's files that travel with it: everything but its manifest (rewritten), the
/// `easel plugin new` templates (the binary embeds those itself), build output and dot files.
fn sdk_files(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || ["Cargo.toml", "Cargo.lock", "target", "templates"].contains(&rel.as_str()) {
            continue;
        }
        if path.is_dir() {
            sdk_files(base, &path, out);
        } else {
            out.push((rel, path));
        }
    }
}

/// The SDK's `Cargo.toml` with every `workspace = true` replaced by the workspace's value, so
/// the copy builds outside this repository.
fn standalone_manifest(manifest: &toml::Table, workspace: &toml::Table) -> String {
    let ws = workspace["workspace"].as_table().expect("[workspace] in Cargo.toml");
    let inherits =
        |v: &toml::Value| v.as_table().and_then(|t| t.get("workspace")).and_then(|w| w.as_bool()) == Some(true);
    let mut out = String::from(
        "# The Easel plugin SDK, written by `easel plugin new` / `easel plugin sdk`: a stand-alone copy\n\
         # of plugin-sdk/ in the Easel repository. Keep it beside your plugin; a newer `easel` writes\n\
         # the SDK (and ABI) it speaks.\n",
    );
    let mut sections: Vec<_> = manifest.iter().collect();
    sections.sort_by_key(|(section, _)| section.as_str() != "package");
    for (section, body) in sections {
        let body =
            body.as_table().unwrap_or_else(|| panic!("plugin-sdk/Cargo.toml: unexpected top-level key {section}"));
        let mut keys: Vec<_> = body.keys().collect();
        if section == "package" {
            keys.sort_by_key(|k| (k.as_str() != "name", k.as_str() != "version"));
        }
        writeln!(out, "\n[{section}]").unwrap();
        for key in keys {
            let value = &body[key];
            let value = match section.as_str() {
                "package" if inherits(value) => ws["package"][key.as_str()].clone(),
                "dependencies" | "build-dependencies" | "dev-dependencies" if inherits(value) => {
                    let mut merged = match &ws["dependencies"][key.as_str()] {
                        toml::Value::String(v) => toml::Table::from_iter([("version".to_string(), v.clone().into())]),
                        toml::Value::Table(t) => t.clone(),
                        other => panic!("workspace dependency {key}: unexpected {other}"),
                    };
                    for (k, v) in value.as_table().unwrap() {
                        match (k.as_str(), merged.get_mut(k)) {
                            ("workspace", _) => {}
                            ("features", Some(toml::Value::Array(features))) => {
                                features.extend(v.as_array().unwrap().iter().cloned())
                            }
                            _ => {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    toml::Value::Table(merged)
                }
                _ if inherits(value) => panic!("plugin-sdk/Cargo.toml: cannot resolve [{section}] {key}.workspace"),
                _ => value.clone(),
            };
            let value = match value {
                toml::Value::Table(t) => toml::Value::Table(t).to_string().replace('\n', " "),
                v => v.to_string(),
            };
            writeln!(out, "{key} = {value}").unwrap();
        }
    }
    out
}

/// Cargo resolves features per build, so the plugins' lock may list dependencies that only a
/// feature some plugin switches on needs (serde's `derive`, say). Let Cargo prune the SDK's
/// closure, offline and without building, for a crate laid out as `easel plugin new` lays it out.
fn prune_lock(out_dir: &Path, files: &[(String, PathBuf)], closure: &[(String, String)]) -> Result<String, String> {
    const ROOT: &str = "easel-plugin-scaffold";
    let dir = out_dir.join("scaffold-lock");
    let _ = std::fs::remove_dir_all(&dir);
    let sdk = dir.join("sdk/easel-plugin-sdk");
    for (rel, path) in files {
        let to = sdk.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::copy(path, &to).map_err(|e| e.to_string())?;
    }
    let manifest = format!(
        "[package]\nname = {ROOT:?}\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n\
         [lib]\npath = \"lib.rs\"\n\n[dependencies]\neasel-plugin-sdk = {{ path = \"sdk/easel-plugin-sdk\" }}\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("lib.rs"), "").map_err(|e| e.to_string())?;
    let root_block =
        format!("[[package]]\nname = {ROOT:?}\nversion = \"0.1.0\"\ndependencies = [\n \"easel-plugin-sdk\",\n]\n");
    let mut blocks: Vec<&str> = closure.iter().map(|(_, b)| b.as_str()).collect();
    blocks.insert(closure.iter().position(|(name, _)| name.as_str() > ROOT).unwrap_or(closure.len()), &root_block);
    let seed = format!(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n{}",
        blocks.join("\n")
    );
    std::fs::write(dir.join("Cargo.lock"), seed).map_err(|e| e.to_string())?;
    let output = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--offline", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    std::fs::read_to_string(dir.join("Cargo.lock")).map_err(|e| e.to_string())
}

/// The `[[package]]` blocks of `root` and everything it depends on in a `Cargo.lock`, rendered
/// as Cargo renders them (a dependency names its version only when two versions are present).
fn lock_closure(lock: &toml::Table, root: &str) -> Vec<(String, String)> {
    let packages = lock["package"].as_array().expect("[[package]] in Cargo.lock");
    let find = |spec: &str| -> usize {
        let mut parts = spec.split(' ');
        let (name, version) = (parts.next().unwrap(), parts.next());
        packages
            .iter()
            .position(|p| p["name"].as_str() == Some(name) && version.is_none_or(|v| p["version"].as_str() == Some(v)))
            .unwrap_or_else(|| panic!("plugins/Cargo.lock has no package {spec}"))
    };
    let mut chosen = vec![find(root)];
    let mut i = 0;
    while i < chosen.len() {
        for dep in packages[chosen[i]].get("dependencies").and_then(|d| d.as_array()).into_iter().flatten() {
            let at = find(dep.as_str().unwrap());
            if !chosen.contains(&at) {
                chosen.push(at);
            }
        }
        i += 1;
    }
    // Cargo wrote the lock sorted (by name, then semantic version): keep its order.
    chosen.sort();
    let chosen: Vec<&toml::Value> = chosen.into_iter().map(|i| &packages[i]).collect();
    let count = |name: &str| chosen.iter().filter(|p| p["name"].as_str() == Some(name)).count();
    chosen
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap();
            let mut block = format!("[[package]]\nname = {:?}\nversion = {:?}\n", name, p["version"].as_str().unwrap());
            for key in ["source", "checksum"] {
                if let Some(v) = p.get(key).and_then(|v| v.as_str()) {
                    writeln!(block, "{key} = {v:?}").unwrap();
                }
            }
            if let Some(deps) = p.get("dependencies").and_then(|d| d.as_array()) {
                block.push_str("dependencies = [\n");
                for dep in deps {
                    let spec = dep.as_str().unwrap();
                    let dep_name = spec.split(' ').next().unwrap();
                    let spec = if count(dep_name) > 1 { spec } else { dep_name };
                    writeln!(block, " {spec:?},").unwrap();
                }
                block.push_str("]\n");
            }
            (name.to_string(), block)
        })
        .collect()
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
