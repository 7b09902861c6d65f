//! Author experience: `easel plugin new` writes a crate that builds as is and passes
//! `easel plugin check`; `check` explains what is wrong in plain words.

use std::path::Path;
use std::process::Command;

use easel::plugins::manifest::PluginKind;
use easel::scaffold::{default_sdk_dependency, plugin_check, plugin_new};

use crate::wasm_build_dir;

#[test]
fn plugin_new_output_builds_and_passes_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_new(PluginKind::Provider, "my-provider", tmp.path(), &default_sdk_dependency()).unwrap();
    assert!(plugin_new(PluginKind::Provider, "my-provider", tmp.path(), "").is_err(), "never overwrites");
    assert!(plugin_new(PluginKind::Filter, "Bad Name", tmp.path(), "").is_err());
    let before = plugin_check(&dir).unwrap_err().to_string();
    assert!(before.contains("cargo build --release --target wasm32-wasip2"), "{before}");

    // Share the plugins' build directory so the SDK's dependencies are not built again.
    let target_dir = wasm_build_dir().parent().unwrap().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(output.status.success(), "the scaffold must build as is:\n{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning:"), "the scaffold builds without warnings:\n{stderr}");
    std::fs::copy(target_dir.join("wasm32-wasip2/release/my_provider.wasm"), dir.join("my_provider.wasm")).unwrap();
    let report = plugin_check(&dir).unwrap();
    assert_eq!(report.id, "my-provider");
    assert_eq!(report.kind, PluginKind::Provider);
    assert!(report.offers.iter().any(|o| o.starts_with("model my-provider/")), "{:?}", report.offers);
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
