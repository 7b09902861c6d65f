//! Author experience: `easel plugin new` writes a crate that builds as is anywhere (its own SDK
//! copy, workspace and lock), passes `easel plugin check` and serves; `check` explains what is
//! wrong in plain words.

use std::path::{Path, PathBuf};
use std::process::Command;

use easel::plugins::manifest::PluginKind;
use easel::scaffold::{SDK_DIR, plugin_check, plugin_new, write_sdk};
use serde_json::json;

use crate::{TestServer, wasm_build_dir};

/// The repository this test was built from: a scaffold must not point into it.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap()
}

/// Every file under `dir`, as (path relative to it, contents).
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path).into_iter().map(|(p, b)| (Path::new(&entry.file_name()).join(p), b)));
        } else {
            out.push((PathBuf::from(entry.file_name()), std::fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn plugin_new_builds_anywhere_passes_check_and_serves() {
    // A folder outside the repository that is itself a Cargo workspace root: the scaffold has
    // its own `[workspace]` and must not join it.
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().canonicalize().unwrap();
    assert!(!parent.starts_with(repository()), "the scaffold is tried outside the repository");
    std::fs::write(parent.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();

    let kinds = [
        (PluginKind::Provider, "my-provider"),
        (PluginKind::StylePack, "my-styles"),
        (PluginKind::Cropper, "my-cropper"),
        (PluginKind::Filter, "my-filter"),
    ];
    let repo = repository().to_string_lossy().to_string();
    for (kind, name) in kinds {
        let dir = plugin_new(kind, name, &parent, None).unwrap();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        assert!(manifest.contains(&format!("easel-plugin-sdk = {{ path = \"{SDK_DIR}\" }}")), "{manifest}");
        let written = files(&dir);
        for (path, bytes) in &written {
            let text = String::from_utf8_lossy(bytes);
            assert!(!text.contains(&repo), "{} names the repository it was built from", path.display());
        }
        let has = |p: &str| written.iter().any(|(path, _)| path == Path::new(p));
        for p in ["Cargo.lock", ".cargo/config.toml", "plugin.toml", "src/lib.rs", "README.md"] {
            assert!(has(p), "{name}: {p} missing");
        }
        for p in ["Cargo.toml", "src/lib.rs", "wit/types.wit", "wit/provider.wit", "README.md", "LICENSE"] {
            assert!(has(&format!("{SDK_DIR}/{p}")), "{name}: the SDK copy lacks {p}");
        }
        let sdk_manifest = std::fs::read_to_string(dir.join(SDK_DIR).join("Cargo.toml")).unwrap();
        assert!(!sdk_manifest.contains("workspace"), "the SDK copy inherits nothing:\n{sdk_manifest}");
        assert!(sdk_manifest.contains("license = \"Apache-2.0\""), "{sdk_manifest}");
    }
    assert!(plugin_new(PluginKind::Provider, "my-provider", &parent, None).is_err(), "never overwrites");
    assert!(plugin_new(PluginKind::Filter, "Bad Name", &parent, None).is_err());
    let dir = parent.join("my-provider");
    let before = plugin_check(&dir).unwrap_err().to_string();
    assert!(before.contains("cargo build --release --target wasm32-wasip2"), "{before}");

    // Build as its README says, with the lock it came with (`--locked`: nothing re-resolved).
    // A target directory of its own under the shared one keeps repeated runs cheap.
    let target_dir = wasm_build_dir().ancestors().nth(3).unwrap().join("scaffold-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--locked", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the scaffold must build as is:\n{stderr}");
    assert!(!stderr.contains("warning:"), "the scaffold builds without warnings:\n{stderr}");
    std::fs::copy(target_dir.join("wasm32-wasip2/release/my_provider.wasm"), dir.join("my_provider.wasm")).unwrap();
    let report = plugin_check(&dir).unwrap();
    assert_eq!(report.id, "my-provider");
    assert_eq!(report.kind, PluginKind::Provider);
    assert!(report.offers.iter().any(|o| o == "model my-provider/gradient: Seeded gradient"), "{:?}", report.offers);

    // Installed as its README says, a server loads it and generates with it.
    let data = tempfile::tempdir().unwrap();
    let installed = data.path().join("plugins/my-provider");
    std::fs::create_dir_all(&installed).unwrap();
    for file in ["plugin.toml", "my_provider.wasm"] {
        std::fs::copy(dir.join(file), installed.join(file)).unwrap();
    }
    let server = TestServer::start_in(data.path(), |_| {});
    let models = server.get("/v1/models").json();
    assert!(models["items"].as_array().unwrap().iter().any(|m| m["id"] == "my-provider/gradient"), "{models}");
    let g =
        server.generate(json!({ "prompt": "a gradient", "model": "my-provider/gradient", "width": 64, "height": 64 }));
    assert_eq!(g["status"], "succeeded", "{g}");
}

#[test]
fn plugin_new_with_an_sdk_line_and_plugin_sdk_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let line = "easel-plugin-sdk = { path = \"../vendor/easel-plugin-sdk\" }";
    let dir = plugin_new(PluginKind::Filter, "their-filter", tmp.path(), Some(line)).unwrap();
    assert!(std::fs::read_to_string(dir.join("Cargo.toml")).unwrap().contains(line));
    assert!(!dir.join("sdk").exists() && !dir.join("Cargo.lock").exists(), "their SDK, their lock");

    // `easel plugin sdk --out DIR`: the same stand-alone crate, alone.
    let sdk = tmp.path().join("vendor/easel-plugin-sdk");
    write_sdk(&sdk).unwrap();
    let manifest = std::fs::read_to_string(sdk.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"easel-plugin-sdk\""), "{manifest}");
    assert!(sdk.join("wit/types.wit").is_file() && sdk.join("src/lib.rs").is_file());
    assert!(!sdk.join("templates").exists(), "the scaffold templates stay in the binary");
    let again = format!("{:#}", write_sdk(&sdk).unwrap_err());
    assert!(again.contains("not empty"), "{again}");
    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write_sdk(&empty).unwrap();
}

fn copy_fixture(to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/fixtures/misbehave");
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(src.join("plugin.toml"), to.join("plugin.toml")).unwrap();
    std::fs::copy(wasm_build_dir().join("fixture_misbehave.wasm"), to.join("fixture_misbehave.wasm")).unwrap();
}

#[test]
fn plugin_check_says_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    copy_fixture(&dir);
    assert_eq!(plugin_check(&dir).unwrap().id, "misbehave");

    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    let cases = [
        (manifest.replace("kind = \"provider\"", "kind = \"filter\""), "filter"),
        (manifest.replace("api_version = \"0.1.0\"", "api_version = \"0.2.0\""), "api_version"),
        (manifest.replace("id = \"misbehave\"", "id = \"Mis Behave\""), "id"),
        (format!("{manifest}\nsha256 = \"{}\"\n", "0".repeat(64)), "sha256"),
    ];
    for (text, word) in cases {
        std::fs::write(dir.join("plugin.toml"), &text).unwrap();
        let err = format!("{:#}", plugin_check(&dir).unwrap_err());
        assert!(err.contains(word), "{err:?} should mention {word}");
    }
    std::fs::write(dir.join("plugin.toml"), &manifest).unwrap();
    std::fs::write(dir.join("fixture_misbehave.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let err = format!("{:#}", plugin_check(&dir).unwrap_err());
    assert!(err.contains("core modules are not plugins"), "{err}");
}
