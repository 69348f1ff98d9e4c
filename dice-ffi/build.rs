//! Gives the shared library a SONAME (`libdice.so.<major>`), so that programs linked against it
//! keep working across compatible upgrades and package managers can install versions side by side.

//!
//! The SONAME carries the ABI's compatibility line: `MAJOR` from 1.0 on, `0.MINOR` before (as
//! Cargo's semver treats 0.x: 0.2.z are compatible with each other, 0.3 is not), so that
//! `libdice.so.0.2` never loads into a program built for another layout.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "0".into());
    let line = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdice.so.{line}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
