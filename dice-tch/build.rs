//! Builds the C++ autograd shim against the LibTorch that torch-sys found, and makes every
//! test and example binary of this package run without LD_LIBRARY_PATH (rpath).

use std::path::PathBuf;

fn main() {
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys did not export its LibTorch lib dir (DEP_TCH_LIBTORCH_LIB)"),
    );
    let root = lib
        .parent()
        .expect("LibTorch lib dir has a parent")
        .to_path_buf();
    let include = root.join("include");
    let api_include = include.join("torch/csrc/api/include");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());

    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        // LibTorch's headers as system headers: their own warnings are not ours.
        .flag("-isystem")
        .flag(include.to_str().expect("UTF-8 LibTorch path"))
        .flag("-isystem")
        .flag(api_include.to_str().expect("UTF-8 LibTorch path"))
        .include(manifest.join("../dice-ffi/include"))
        // The pip wheels of PyTorch 2.x are built with the C++11 ABI, as torch-sys reports.
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .flag("-Wall")
        .flag("-Wextra")
        .file("csrc/dice_autograd.cpp")
        .compile("dice_autograd");

    // Tests, examples and benches of this package find LibTorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // Keep libtorch (and libtorch_cuda where the wheel has it) even though no Rust code names
    // their symbols: without it CUDA is not registered and tensors cannot move to the GPU.
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-L{}", lib.display());
    println!("cargo:rustc-link-arg=-ltorch");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
    // Exposed to dependents that link torch too (the root package's benches).
    println!("cargo:libtorch_lib={}", lib.display());
    println!("cargo:rerun-if-changed=csrc/dice_autograd.cpp");
    println!("cargo:rerun-if-changed=../dice-ffi/include/dice.h");
    println!("cargo:rerun-if-changed=build.rs");
}
