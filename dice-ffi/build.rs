//! Gives the shared library a SONAME (`libdice.so.<major>`), so that programs linked against it
//! keep working across compatible upgrades and package managers can install versions side by side.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdice.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
