//! With the `tch` feature, the benches link LibTorch: give them its rpath (and keep libtorch
//! linked), so that they run without LD_LIBRARY_PATH. Without the feature, nothing to do.

fn main() {
    if let Ok(lib) = std::env::var("DEP_DICE_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-arg=-L{lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
