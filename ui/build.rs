//! Tauri's build step: embeds the config and the frontend, and declares the
//! app's own commands so the window's capability can allow exactly them.

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&["snapshot", "recheck", "remind"]);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        println!("cargo::error=tauri build step: {e:#}");
    }
}
