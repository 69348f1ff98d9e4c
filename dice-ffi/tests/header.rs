//! The committed header `include/dice.h` is what cbindgen generates from the sources today.
//! `DICE_UPDATE_HEADER=1 cargo test -p dice-ffi --test header` rewrites it.

use std::path::Path;

/// The version macros, from the one source of the version (the workspace's, which also sets
/// dice_version() and the SONAME in build.rs).
fn version_macros() -> String {
    let (major, minor, patch) = (
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    );
    let soname = if major == "0" {
        format!("0.{minor}")
    } else {
        major.to_string()
    };
    format!(
        "\n/** The version of this header: equal to dice_version() of the library it ships with. */\n\
         #define DICE_VERSION_MAJOR {major}\n\
         #define DICE_VERSION_MINOR {minor}\n\
         #define DICE_VERSION_PATCH {patch}\n\
         #define DICE_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         /** The shared library's SONAME: its compatibility line (see the stability policy). */\n\
         #define DICE_SONAME \"libdice.so.{soname}\"\n"
    )
}

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros());
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let path = dir.join("include/dice.h");
    if std::env::var_os("DICE_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/dice.h is stale: run `DICE_UPDATE_HEADER=1 cargo test -p dice-ffi --test header` and commit it"
    );
}
