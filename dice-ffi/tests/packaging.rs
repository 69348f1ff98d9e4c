//! Packaging for C and C++ users: `install.sh` lays out a prefix; a program builds from the
//! pkg-config file's flags; the example CMake project finds the package with
//! `find_package(dice)` and builds and runs against both the shared and the static library.
//!
//! CMake is not on every machine: `./run-tests.sh` provisions it (and Ninja) from PyPI and sets
//! `DICE_CMAKE` (and `DICE_REQUIRE_CMAKE=1`, so that CI fails rather than skips).

use std::path::{Path, PathBuf};
use std::process::Command;

const EXPECTED: [&str; 3] = [
    "label 0 dice 0.666667",
    "label 1 dice 0.750000",
    "label 2 dice 0.857143",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Installs the libraries this test run built (beside the test binary) into a fresh prefix
/// (one per test: the tests run in parallel).
fn install(name: &str) -> PathBuf {
    let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dice-prefix-{name}"));
    let _ = std::fs::remove_dir_all(&prefix);
    let built = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new("bash")
        .arg(manifest_dir().join("install.sh"))
        .arg(&prefix)
        .arg("--from")
        .arg(&built)
        .env("CARGO", env!("CARGO"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    prefix
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_output(stdout: &str) {
    for line in EXPECTED {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}

/// The flags `pkg-config --cflags --libs dice` gives: from pkg-config itself when installed,
/// else from reading the .pc file (variables expanded) so the file is still checked.
fn pkg_config_flags(prefix: &Path) -> Vec<String> {
    let pc_dir = prefix.join("lib/pkgconfig");
    if let Ok(out) = Command::new("pkg-config")
        .args(["--cflags", "--libs", "dice"])
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
    {
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
        }
    }
    let text = std::fs::read_to_string(pc_dir.join("dice.pc")).unwrap();
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut flags = Vec::new();
    let expand = |s: &str, vars: &[(String, String)]| {
        let mut s = s.to_string();
        for (k, v) in vars.iter().rev() {
            s = s.replace(&format!("${{{k}}}"), v);
        }
        s
    };
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if !k.contains(':') && !k.contains(' ') {
                let v = expand(v.trim(), &vars);
                vars.push((k.trim().to_string(), v));
                continue;
            }
        }
        if let Some(v) = line
            .strip_prefix("Cflags:")
            .or_else(|| line.strip_prefix("Libs:"))
        {
            flags.extend(
                expand(v.trim(), &vars)
                    .split_whitespace()
                    .map(str::to_string),
            );
        }
    }
    flags
}

#[test]
fn install_layout_and_pkg_config() {
    let prefix = install("pkg-config");
    let lib = prefix.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    for f in [
        "include/dice.h",
        "include/dice.hpp",
        "lib/libdice.a",
        "lib/pkgconfig/dice.pc",
        "lib/cmake/dice/diceConfig.cmake",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    assert!(lib.join(format!("libdice.so.{version}")).is_file());
    let soname = match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("libdice.so.0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        m => format!("libdice.so.{m}"),
    };
    assert_eq!(
        std::fs::read_link(lib.join(&soname)).unwrap(),
        PathBuf::from(format!("libdice.so.{version}"))
    );
    assert_eq!(
        std::fs::read_link(lib.join("libdice.so")).unwrap(),
        PathBuf::from(&soname)
    );
    // `pkg-config --modversion dice` is the library's version (from the .pc when pkg-config
    // is not installed).
    let pc_dir = prefix.join("lib/pkgconfig");
    let modversion = match Command::new("pkg-config")
        .args(["--modversion", "dice"])
        .env("PKG_CONFIG_PATH", &pc_dir)
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => std::fs::read_to_string(pc_dir.join("dice.pc"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .unwrap()
            .trim()
            .to_string(),
    };
    assert_eq!(modversion, version);

    let flags = pkg_config_flags(&prefix);
    assert!(
        flags.iter().any(|f| f.starts_with("-I")) && flags.iter().any(|f| f == "-ldice"),
        "{flags:?}"
    );
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pkg-config-example");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run_ok(
        Command::new(&cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(manifest_dir().join("examples/cmake/main.c"))
            .args(&flags)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-o")
            .arg(&exe),
        "compiling with pkg-config flags",
    );
    check_output(&run_ok(&mut Command::new(&exe), "pkg-config example"));
}

#[test]
fn cmake_find_package() {
    let cmake = match std::env::var("DICE_CMAKE") {
        Ok(c) => c,
        Err(_)
            if Command::new("cmake")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()) =>
        {
            "cmake".into()
        }
        Err(_) => {
            assert!(
                std::env::var_os("DICE_REQUIRE_CMAKE").is_none(),
                "DICE_REQUIRE_CMAKE is set but no cmake was found (set DICE_CMAKE)"
            );
            eprintln!("SKIPPED cmake_find_package: no cmake on this machine (./run-tests.sh provisions one)");
            return;
        }
    };
    let prefix = install("cmake");
    let build = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cmake-example-build");
    let _ = std::fs::remove_dir_all(&build);
    let mut configure = Command::new(&cmake);
    configure
        .arg("-S")
        .arg(manifest_dir().join("examples/cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()));
    // Ninja from the provisioned tools when there (a fresh machine may have no make).
    if let Ok(ninja) = std::env::var("DICE_NINJA") {
        configure
            .args(["-G", "Ninja"])
            .arg(format!("-DCMAKE_MAKE_PROGRAM={ninja}"));
    }
    run_ok(&mut configure, "cmake configure");
    run_ok(
        Command::new(&cmake).arg("--build").arg(&build),
        "cmake build",
    );
    let shared = run_ok(
        &mut Command::new(build.join("per_label_dice")),
        "shared example",
    );
    assert!(shared.contains(&format!("dice {}", env!("CARGO_PKG_VERSION"))));
    check_output(&shared);
    check_output(&run_ok(
        &mut Command::new(build.join("per_label_dice_cpp")),
        "static C++ example",
    ));
    // The version check: a project written for another compatibility line (0.1 before 1.0,
    // or a newer release than installed) does not find this dice.
    let (major, minor) = (
        env!("CARGO_PKG_VERSION_MAJOR").parse::<u32>().unwrap(),
        env!("CARGO_PKG_VERSION_MINOR").parse::<u32>().unwrap(),
    );
    let mut wrong = vec![format!("{major}.{}", minor + 1)];
    if major == 0 && minor > 0 {
        wrong.push(format!("0.{}", minor - 1));
    }
    for want in wrong {
        let other = build.with_file_name(format!("cmake-example-build-{want}"));
        let _ = std::fs::remove_dir_all(&other);
        let mut c = Command::new(&cmake);
        c.arg("-S")
            .arg(manifest_dir().join("examples/cmake"))
            .arg("-B")
            .arg(&other)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DDICE_WANT_VERSION={want}"));
        if let Ok(ninja) = std::env::var("DICE_NINJA") {
            c.args(["-G", "Ninja"])
                .arg(format!("-DCMAKE_MAKE_PROGRAM={ninja}"));
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !out.status.success() && text.contains("compatible with requested version"),
            "find_package(dice {want}) found dice {}: {text}",
            env!("CARGO_PKG_VERSION")
        );
    }
}
