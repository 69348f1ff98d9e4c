//! dice-core is `#![no_std]` and depends on `libm` alone: checked by building it without
//! default features and reading its dependency tree.

use std::path::PathBuf;
use std::process::Command;

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn core_crate_root_declares_no_std_and_denies_unsafe() {
    let lib = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dice-core/src/lib.rs"),
    )
    .unwrap();
    assert!(lib.contains("#![no_std]"));
    assert!(lib.contains("#![deny(unsafe_code)]"));
    // unsafe is allowed in exactly the SIMD kernel modules (x86-64 and aarch64).
    let kernels = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dice-core/src");
    let mut allowing = Vec::new();
    for entry in walk(&kernels) {
        let text = std::fs::read_to_string(&entry).unwrap();
        if text.contains("allow(unsafe_code)") {
            allowing.push(entry.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    allowing.sort();
    assert_eq!(allowing, ["neon.rs", "x86.rs"]);
}

fn walk(dir: &PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn core_builds_without_default_features() {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no_std");
    let out = cargo()
        .args([
            "build",
            "-q",
            "-p",
            "dice-core",
            "--no-default-features",
            "--lib",
            "--target-dir",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn core_depends_on_libm_alone() {
    let out = cargo()
        .args([
            "tree",
            "-q",
            "-p",
            "dice-core",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let mut names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["dice-core", "libm"], "{tree}");
}
