//! The ABI of `libdice.so` against the committed baseline of its SONAME (`dice-ffi/abi/`),
//! as the stability policy in `dice.h` defines it.
//!
//! The listing is derived from the header by a C program that the C compiler lays out (every
//! struct's size, alignment, field offsets and sizes; every enumeration constant's value), plus
//! every function prototype (normalised text) and the symbols the built library exports
//! (`nm -D`). Rust's own `size_of` of every struct is compared with the C compiler's, so the
//! header and the library agree. Against the baseline:
//! * removed or changed functions, symbols and constants fail;
//! * a frozen struct that changes at all fails; an extensible one (first field
//!   `struct_size`) may only grow at its end, beyond its old size (never into its tail
//!   padding, which older callers leave uninitialised);
//! * additions pass and are printed.
//!
//! `DICE_UPDATE_ABI=1 cargo test -p dice-ffi --test abi` writes the baseline (and the header it
//! was taken from, `dice-<version>.h`, which `old_programs_run_against_this_library` builds an
//! old program against) for the current SONAME: do it when a release adds to the ABI, or when
//! the SONAME changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `0.MINOR` before 1.0, else `MAJOR` (build.rs).
fn soname() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("libdice.so.0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        m => format!("libdice.so.{m}"),
    }
}

fn baseline_path() -> PathBuf {
    manifest().join("abi").join(format!("{}.abi", soname()))
}

/// Where `cargo test` put `libdice.so`: beside this test binary.
fn built_lib() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let lib = deps.join("libdice.so");
    assert!(lib.exists(), "no libdice.so in {}", deps.display());
    lib
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("abi")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `src` as C11 (warnings are errors) with `inc` as the include folder into `exe`.
fn compile_c(inc: &Path, src: &Path, exe: &Path, extra: &[String]) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(inc)
        .arg(src)
        .arg("-o")
        .arg(exe)
        .args(extra)
        .output()
        .expect("a C compiler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The header without comments or preprocessor lines.
fn code_of(header: &str) -> String {
    let mut out = String::new();
    let mut rest = header;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        match rest.find("*/") {
            Some(j) => rest = &rest[j + 2..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    // The `extern "C" {` … `}` of C++ builds encloses the prototypes: drop both lines.
    out.lines()
        .filter(|l| {
            let t = l.trim();
            !t.starts_with('#') && t != "extern \"C\" {" && !t.ends_with("// extern \"C\"")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the header declares: structs (with their field names), enumeration constants, and
/// function prototypes and typedefs of function types (normalised).
#[derive(Default)]
struct Declarations {
    structs: Vec<(String, Vec<String>)>,
    constants: Vec<String>,
    prototypes: Vec<String>,
}

fn declarations(header: &str) -> Declarations {
    let code = code_of(header);
    let mut d = Declarations::default();
    // Top-level declarations end with `;` at brace depth 0.
    let mut depth = 0;
    let mut start = 0;
    let bytes = code.as_bytes();
    let mut decls = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b';' if depth == 0 => {
                decls.push(normalise(&code[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    for decl in decls {
        let decl = decl.trim_start_matches("extern \"C\" {").trim().to_string();
        if decl.is_empty() || decl == "}" {
            continue;
        }
        if let Some(body) = decl.strip_prefix("typedef struct ") {
            let Some(open) = body.find('{') else {
                continue; // an opaque handle
            };
            let name = body[..open].trim().to_string();
            let inner = &body[open + 1..body.rfind('}').unwrap()];
            let fields = inner
                .split(';')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(|f| {
                    if let Some(p) = f.find("(*") {
                        f[p + 2..f[p..].find(')').unwrap() + p].to_string()
                    } else {
                        let f = f.split('[').next().unwrap();
                        f.rsplit([' ', '*']).next().unwrap().to_string()
                    }
                })
                .collect();
            d.structs.push((name, fields));
        } else if let Some(body) = decl.strip_prefix("typedef enum ") {
            let open = body.find('{').unwrap();
            let inner = &body[open + 1..body.rfind('}').unwrap()];
            for c in inner.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                d.constants
                    .push(c.split('=').next().unwrap().trim().to_string());
            }
        } else if decl.contains('(') {
            d.prototypes
                .push(decl.replace("( ", "(").replace(" )", ")"));
        }
    }
    d
}

/// The ABI listing of `header`, laid out by the C compiler, with `lib`'s exported symbols.
fn listing(header: &Path, lib: &Path, dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(header).unwrap();
    let d = declarations(&text);
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"dice.h\"\nint main(void) {\n",
    );
    for (name, fields) in &d.structs {
        c += &format!(
            "  printf(\"struct {name} size=%zu align=%zu\\n\", sizeof({name}), _Alignof({name}));\n"
        );
        for f in fields {
            c += &format!(
                "  printf(\"struct {name} field {f} offset=%zu size=%zu\\n\", offsetof({name}, {f}), sizeof((({name} *)0)->{f}));\n"
            );
        }
    }
    for k in &d.constants {
        c += &format!("  printf(\"const {k} = %lld\\n\", (long long){k});\n");
    }
    c += "  return 0;\n}\n";
    let inc = dir.join("include");
    std::fs::create_dir_all(&inc).unwrap();
    std::fs::copy(header, inc.join("dice.h")).unwrap();
    std::fs::write(dir.join("layout.c"), c).unwrap();
    let exe = dir.join("layout");
    compile_c(&inc, &dir.join("layout.c"), &exe, &[]);
    let out = Command::new(&exe).output().unwrap();
    let mut lines: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for p in &d.prototypes {
        lines.insert(format!("function {p}"));
    }
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib)
        .output()
        .expect("nm (binutils, installed with gcc)");
    assert!(nm.status.success());
    for l in String::from_utf8_lossy(&nm.stdout).lines() {
        let parts: Vec<&str> = l.split_whitespace().collect();
        if let [_, "T", name] = parts[..] {
            if name.starts_with("dice_") {
                lines.insert(format!("symbol {name}"));
            }
        }
    }
    lines
}

/// `struct NAME …` lines grouped by struct: (size line, field name → line).
fn structs(l: &BTreeSet<String>) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    let mut m: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for line in l.iter().filter(|l| l.starts_with("struct ")) {
        let mut w = line.split(' ');
        let name = w.nth(1).unwrap().to_string();
        let e = m.entry(name).or_default();
        if w.next() == Some("field") {
            e.1.insert(w.next().unwrap().to_string(), line.clone());
        } else {
            e.0 = line.clone();
        }
    }
    m
}

fn number(line: &str, key: &str) -> usize {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key))
        .unwrap()
        .parse()
        .unwrap()
}

/// What breaks the policy going from `old` to `new`, and what was added.
fn compare(old: &BTreeSet<String>, new: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mut broken = Vec::new();
    let mut added = Vec::new();
    for line in old.iter().filter(|l| !l.starts_with("struct ")) {
        if !new.contains(line) {
            broken.push(format!("removed or changed: {line}"));
        }
    }
    for line in new.iter().filter(|l| !l.starts_with("struct ")) {
        if !old.contains(line) {
            added.push(line.clone());
        }
    }
    let (os, ns) = (structs(old), structs(new));
    for (name, (size_line, fields)) in &os {
        let Some((new_size, new_fields)) = ns.get(name) else {
            broken.push(format!("struct {name} removed"));
            continue;
        };
        let extensible = fields
            .get("struct_size")
            .is_some_and(|l| number(l, "offset=") == 0);
        for (f, line) in fields {
            if new_fields.get(f) != Some(line) {
                broken.push(format!(
                    "struct {name}: field {f} moved, resized or removed: {line}"
                ));
            }
        }
        let old_size = number(size_line, "size=");
        for (f, line) in new_fields.iter().filter(|(f, _)| !fields.contains_key(*f)) {
            if !extensible {
                broken.push(format!("frozen struct {name} gained field {f}: {line}"));
            } else if number(line, "offset=") < old_size {
                broken.push(format!(
                    "struct {name}: new field {f} lies inside the old size {old_size} (its tail \
                     padding, which older callers leave uninitialised): {line}"
                ));
            } else {
                added.push(line.clone());
            }
        }
        if new_size != size_line {
            if extensible && number(new_size, "size=") > old_size {
                added.push(new_size.clone());
            } else {
                broken.push(format!("struct {name}: {size_line} became {new_size}"));
            }
        }
    }
    for (name, (size_line, _)) in ns.iter().filter(|(n, _)| !os.contains_key(*n)) {
        added.push(format!("new struct {name}: {size_line}"));
    }
    (broken, added)
}

#[test]
fn library_matches_the_abi_baseline_of_its_soname() {
    let dir = scratch("current");
    let header = manifest().join("include/dice.h");
    let now = listing(&header, &built_lib(), &dir);
    // Every exported function is declared, and every declared one exported.
    let declared: BTreeSet<&str> = now
        .iter()
        .filter_map(|l| l.strip_prefix("function "))
        .filter_map(|p| p.split('(').next()?.rsplit([' ', '*']).next())
        .filter(|n| n.starts_with("dice_"))
        .collect();
    let exported: BTreeSet<&str> = now
        .iter()
        .filter_map(|l| l.strip_prefix("symbol "))
        .collect();
    assert_eq!(declared, exported, "dice.h and libdice.so's exports differ");
    let path = baseline_path();
    if std::env::var_os("DICE_UPDATE_ABI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text: String = now.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        std::fs::copy(
            &header,
            path.with_file_name(format!("dice-{}.h", env!("CARGO_PKG_VERSION"))),
        )
        .unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no ABI baseline for {} ({}): a new SONAME needs one: \
             DICE_UPDATE_ABI=1 cargo test -p dice-ffi --test abi",
            soname(),
            path.display()
        )
    });
    let old: BTreeSet<String> = text.lines().map(str::to_string).collect();
    let (broken, added) = compare(&old, &now);
    assert!(
        broken.is_empty(),
        "the ABI of {} broke its stability policy (dice.h): either restore it, or move to a \
         new SONAME and record its baseline:\n  {}",
        soname(),
        broken.join("\n  ")
    );
    if !added.is_empty() {
        eprintln!(
            "ABI additions since the {} baseline (allowed; record them at release with \
             DICE_UPDATE_ABI=1):\n  {}",
            soname(),
            added.join("\n  ")
        );
    }
}

/// Rust's layout of every struct is the C compiler's layout of the header's.
#[test]
fn rust_and_c_agree_on_every_struct_size() {
    use dice::*;
    let dir = scratch("sizes");
    let now = listing(&manifest().join("include/dice.h"), &built_lib(), &dir);
    let rust: BTreeMap<&str, usize> = BTreeMap::from([
        ("DiceExecutor", std::mem::size_of::<DiceExecutor>()),
        ("DiceSoftParams", std::mem::size_of::<DiceSoftParams>()),
        ("DiceTarget", std::mem::size_of::<DiceTarget>()),
        ("DiceShape", std::mem::size_of::<DiceShape>()),
        ("DiceStats", std::mem::size_of::<DiceStats>()),
        ("DiceLossValue", std::mem::size_of::<DiceLossValue>()),
        ("DiceEmptyPolicy", std::mem::size_of::<DiceEmptyPolicy>()),
        ("DiceConfusion", std::mem::size_of::<DiceConfusion>()),
        ("DiceGrid", std::mem::size_of::<DiceGrid>()),
        (
            "DiceSurfaceDistances",
            std::mem::size_of::<DiceSurfaceDistances>(),
        ),
        (
            "DiceEmptyDistance",
            std::mem::size_of::<DiceEmptyDistance>(),
        ),
        (
            "DiceSurfaceEmptyPolicy",
            std::mem::size_of::<DiceSurfaceEmptyPolicy>(),
        ),
        (
            "DiceCompoundParams",
            std::mem::size_of::<DiceCompoundParams>(),
        ),
        (
            "DiceCompoundValue",
            std::mem::size_of::<DiceCompoundValue>(),
        ),
        ("DiceBratsParams", std::mem::size_of::<DiceBratsParams>()),
        ("DiceLesionWise", std::mem::size_of::<DiceLesionWise>()),
        ("DiceLesion", std::mem::size_of::<DiceLesion>()),
        ("DiceDetection", std::mem::size_of::<DiceDetection>()),
    ]);
    let c = structs(&now);
    assert_eq!(
        c.keys().map(String::as_str).collect::<Vec<_>>(),
        rust.keys().copied().collect::<Vec<_>>(),
        "every struct of dice.h is listed here"
    );
    for (name, (line, _)) in &c {
        assert_eq!(number(line, "size="), rust[name.as_str()], "{name}: {line}");
    }
}

/// The comparison itself: what the policy allows and what it refuses.
#[test]
fn policy_checks_catch_breaks_and_allow_growth() {
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    let old = set(&[
        "function int dice_a(int x)",
        "symbol dice_a",
        "const DICE_X = 1",
        "struct P size=16 align=8",
        "struct P field struct_size offset=0 size=8",
        "struct P field a offset=8 size=4",
        "struct F size=8 align=8",
        "struct F field v offset=0 size=8",
    ]);
    let grown = set(&[
        "function int dice_a(int x)",
        "function int dice_b(void)",
        "symbol dice_a",
        "symbol dice_b",
        "const DICE_X = 1",
        "const DICE_Y = 2",
        "struct P size=24 align=8",
        "struct P field struct_size offset=0 size=8",
        "struct P field a offset=8 size=4",
        "struct P field b offset=16 size=8",
        "struct F size=8 align=8",
        "struct F field v offset=0 size=8",
    ]);
    let (broken, added) = compare(&old, &grown);
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(added.len(), 5, "{added:?}");
    // Into the tail padding of P, a frozen struct grown, a changed signature and constant.
    let bad = set(&[
        "function int dice_a(long x)",
        "symbol dice_a",
        "const DICE_X = 3",
        "struct P size=16 align=8",
        "struct P field struct_size offset=0 size=8",
        "struct P field a offset=8 size=4",
        "struct P field b offset=12 size=4",
        "struct F size=16 align=8",
        "struct F field v offset=0 size=8",
        "struct F field w offset=8 size=8",
    ]);
    let (broken, _) = compare(&old, &bad);
    assert_eq!(broken.len(), 5, "{broken:#?}");
}

/// A program built against the baseline's header (an older program, once the ABI has grown)
/// runs against this library under AddressSanitizer and UndefinedBehaviorSanitizer, with
/// guard bytes after every struct it passes, and prints the same numbers as the same program
/// built against today's header.
#[test]
fn old_programs_run_against_this_library() {
    let base = std::fs::read_dir(manifest().join("abi"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("dice-") && n.ends_with(".h")
        })
        .filter(|p| {
            // Headers of this SONAME only: older lines never load this library.
            let text = std::fs::read_to_string(p).unwrap();
            text.contains(&format!("#define DICE_SONAME \"{}\"", soname()))
        })
        .collect::<Vec<_>>();
    assert!(
        !base.is_empty(),
        "no baseline header of {} in dice-ffi/abi",
        soname()
    );
    let lib = built_lib();
    let mut outputs = Vec::new();
    for header in base
        .iter()
        .cloned()
        .chain([manifest().join("include/dice.h")])
    {
        let name = header.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = scratch(&format!("old-{name}"));
        let inc = dir.join("include");
        std::fs::create_dir_all(&inc).unwrap();
        std::fs::copy(&header, inc.join("dice.h")).unwrap();
        // Linked against the shared library by its SONAME, as a distribution's program is.
        let libdir = dir.join("lib");
        std::fs::create_dir_all(&libdir).unwrap();
        std::fs::copy(&lib, libdir.join(soname())).unwrap();
        std::os::unix::fs::symlink(soname(), libdir.join("libdice.so")).unwrap();
        let exe = dir.join("old_program");
        compile_c(
            &inc,
            &manifest().join("tests/abi/old_program.c"),
            &exe,
            &[
                "-g".into(),
                "-fsanitize=address,undefined".into(),
                "-fno-sanitize-recover=all".into(),
                format!("-L{}", libdir.display()),
                format!("-Wl,-rpath,{}", libdir.display()),
                "-ldice".into(),
                "-lm".into(),
            ],
        );
        let run = Command::new(&exe)
            .env("ASAN_OPTIONS", "detect_leaks=0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(
            run.status.success(),
            "{name}: {stdout}\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("guards intact"), "{stdout}");
        outputs.push((name, stdout));
    }
    let (_, current) = outputs.last().unwrap();
    for (name, out) in &outputs {
        assert_eq!(out, current, "{name} disagrees with today's header");
    }
}
