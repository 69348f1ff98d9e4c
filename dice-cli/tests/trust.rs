//! `dice eval` as an attacker would drive it (issue 21): detached headers that reach outside
//! their folder, special files (FIFOs, `/dev/zero`, `/dev/full`), outputs aimed at inputs and
//! special files, values across types, corrupt geometry, many labels, and hostile file names.
//! Every run is bounded in time: a hang is a failure, never a stuck test suite.

#![cfg(unix)]

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dice_cli::formats::{nifti, npy};
use dice_cli::{Data, Volume};
use dice_core::hard::{self, Confusion, EmptyPolicy};

fn dice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dice"));
    c.stdin(Stdio::null());
    c
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("trust")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cmd`, killing it after `secs` seconds (then the test fails: the run hung).
fn bounded(cmd: &mut Command, secs: u64) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dice binary runs");
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        so.read_to_end(&mut v).unwrap();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        se.read_to_end(&mut v).unwrap();
        v
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let took = start.elapsed();
            let out = Output {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
            return (out, took);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish in {secs} s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs (bounded), expects exit status `code`, returns standard error.
fn status(cmd: &mut Command, code: i32) -> String {
    let (out, _) = bounded(cmd, 60);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn ok(cmd: &mut Command) -> String {
    let (out, _) = bounded(cmd, 60);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn eval(p: &Path, g: &Path) -> Command {
    let mut c = dice();
    c.arg("eval").arg(p).arg(g);
    c
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// The 4×4×4 prediction of the small pair (every third voxel): raw bytes of a data file.
fn small_pred() -> Vec<u8> {
    (0..64).map(|i| (i % 3 == 0) as u8).collect()
}

/// The 4×4×4 reference of the small pair (every second voxel).
fn small_ref() -> Vec<u8> {
    (0..64).map(|i| (i % 2 == 0) as u8).collect()
}

/// A 4×4×4 uint8 label map and its reference, as NIfTI files `p.nii`/`g.nii` in `dir`.
fn small_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let (p, g) = (small_pred(), small_ref());
    let (pp, gp) = (dir.join("p.nii"), dir.join("g.nii"));
    nifti::write(&pp, &Volume::new(vec![4, 4, 4], Data::U8(p))).unwrap();
    nifti::write(&gp, &Volume::new(vec![4, 4, 4], Data::U8(g))).unwrap();
    (pp, gp)
}

/// A detached NRRD header for a 4×4×4 volume of `ty` with the given extra lines.
fn nhdr(path: &Path, ty: &str, encoding: &str, data_file: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "NRRD0004\ntype: {ty}\ndimension: 3\nsizes: 4 4 4\nencoding: {encoding}\n{extra}\
             data file: {data_file}\n"
        ),
    )
    .unwrap();
}

fn mhd(path: &Path, data_file: &str) {
    std::fs::write(
        path,
        format!(
            "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n\
             ElementDataFile = {data_file}\n"
        ),
    )
    .unwrap();
}

/// The reference of [`small_pair`] as a MetaImage `gm.mhd` + `gm.raw` in `dir` (MetaImage's
/// default orientation differs from a NIfTI file's without one).
fn mhd_reference(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("gm.raw"), small_ref()).unwrap();
    mhd(&dir.join("gm.mhd"), "gm.raw");
    dir.join("gm.mhd")
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success());
}

// ---- detached headers -------------------------------------------------------------------

/// A header may only name data inside its own folder; outside, the error names the header and
/// the field, and never a byte of the file it tried to reach.
#[test]
fn detached_headers_stay_in_their_folder() {
    let root = tmp("outside");
    let dir = root.join("case");
    std::fs::create_dir(&dir).unwrap();
    let (_, g) = small_pair(&dir);
    let inside = small_pred();
    std::fs::write(root.join("secret.raw"), &inside).unwrap();
    std::fs::write(dir.join("d.raw"), &inside).unwrap();
    let secret = "DICE_TEST_SECRET=hunter2-token-9f8e7d";

    // The classic probe: ascii data from /proc/self/environ. Refused by the policy, and still
    // not quoted when the user allows data outside (then the text is not numbers).
    let h = dir.join("environ.nhdr");
    nhdr(&h, "uint8", "ascii", "/proc/self/environ", "");
    for allow in [false, true] {
        let mut c = eval(&h, &g);
        c.env("DICE_TEST_SECRET", "hunter2-token-9f8e7d");
        if allow {
            c.arg("--allow-data-outside");
        }
        let e = status(&mut c, 1);
        assert!(!e.contains("hunter2"), "{e}");
        assert!(!e.contains(secret), "{e}");
        assert!(e.contains("environ.nhdr"), "{e}");
        if !allow {
            assert!(e.contains("data file") && e.contains("outside"), "{e}");
            assert!(e.contains("--allow-data-outside"), "{e}");
        }
    }

    // `..`, an absolute path, a symlink leading out: refused by default, read when allowed.
    let abs = root.join("secret.raw");
    symlink(&abs, dir.join("link.raw")).unwrap();
    let cases = [
        ("up.nhdr", "../secret.raw".to_string()),
        ("abs.nhdr", abs.to_str().unwrap().to_string()),
        ("link.nhdr", "link.raw".to_string()),
    ];
    for (name, data) in &cases {
        let h = dir.join(name);
        nhdr(&h, "uint8", "raw", data, "");
        let e = status(&mut eval(&h, &g), 1);
        assert!(e.contains(name) && e.contains("outside"), "{e}");
        ok(eval(&h, &g).arg("--allow-data-outside"));
    }
    // MetaImage: the same policy for ElementDataFile.
    let gm = mhd_reference(&dir);
    let m = dir.join("abs.mhd");
    mhd(&m, abs.to_str().unwrap());
    let e = status(&mut eval(&m, &gm), 1);
    assert!(
        e.contains("ElementDataFile") && e.contains("outside"),
        "{e}"
    );
    ok(eval(&m, &gm).arg("--allow-data-outside"));
    mhd(&dir.join("up.mhd"), "../secret.raw");
    status(&mut eval(&dir.join("up.mhd"), &gm), 1);
    // Inside the folder (also through a symlink that stays inside): read as before.
    nhdr(&dir.join("in.nhdr"), "uint8", "raw", "d.raw", "");
    symlink("d.raw", dir.join("alias.raw")).unwrap();
    nhdr(&dir.join("alias.nhdr"), "uint8", "raw", "alias.raw", "");
    mhd(&dir.join("in.mhd"), "./d.raw");
    let a = ok(eval(&dir.join("in.nhdr"), &g).args(["--format", "csv"]));
    assert_eq!(
        a,
        ok(eval(&dir.join("alias.nhdr"), &g).args(["--format", "csv"])).replace("alias", "in")
    );
    ok(&mut eval(&dir.join("in.mhd"), &gm));
    // A header reached through a symlink into another folder is judged by the folder it was
    // named in: the data it names must resolve inside that folder.
    let other = root.join("other");
    std::fs::create_dir(&other).unwrap();
    symlink(dir.join("in.nhdr"), other.join("in.nhdr")).unwrap();
    status(&mut eval(&other.join("in.nhdr"), &g), 1);

    // The .img of an Analyze/NIfTI pair is a data file too: a symlink out is refused.
    let pairdir = root.join("pair");
    std::fs::create_dir(&pairdir).unwrap();
    let hdr = pairdir.join("y.hdr");
    // A NIfTI-1 pair written by hand: the .hdr beside, the .img a symlink out.
    let single = std::fs::read(dir.join("p.nii")).unwrap();
    let mut header = single[..348].to_vec();
    header[344..348].copy_from_slice(b"ni1\0");
    header[108..112].copy_from_slice(&0f32.to_le_bytes());
    std::fs::write(&hdr, &header).unwrap();
    symlink(&abs, pairdir.join("y.img")).unwrap();
    let e = status(&mut eval(&hdr, &g), 1);
    assert!(e.contains("y.hdr") && e.contains("outside"), "{e}");
    ok(eval(&hdr, &g).arg("--allow-data-outside"));
}

// ---- special files ----------------------------------------------------------------------

/// FIFOs and devices as inputs, as data files and inside input directories: a clear error or
/// a skipped entry, never a hang.
#[test]
fn special_files_never_hang() {
    let dir = tmp("special");
    let (p, g) = small_pair(&dir);
    let fifo = dir.join("pipe.nii");
    mkfifo(&fifo);
    let e = status(&mut eval(&fifo, &g), 1);
    assert!(e.contains("pipe.nii") && e.contains("FIFO"), "{e}");
    symlink("/dev/zero", dir.join("zero.nii")).unwrap();
    let e = status(&mut eval(&p, &dir.join("zero.nii")), 1);
    assert!(
        e.contains("zero.nii") && e.contains("character device"),
        "{e}"
    );
    // A data file that is a FIFO or /dev/zero (with skips that would read forever).
    mkfifo(&dir.join("d.raw"));
    nhdr(&dir.join("f.nhdr"), "uint8", "raw", "d.raw", "");
    let e = status(&mut eval(&dir.join("f.nhdr"), &g), 1);
    assert!(e.contains("f.nhdr") && e.contains("FIFO"), "{e}");
    symlink("/dev/zero", dir.join("z.raw")).unwrap();
    for (enc, extra) in [
        ("raw", "line skip: 5\n"),
        ("raw", "byte skip: 100\n"),
        ("ascii", ""),
        ("gzip", "line skip: 2\n"),
    ] {
        let h = dir.join("z.nhdr");
        nhdr(&h, "uint8", enc, "z.raw", extra);
        let e = status(eval(&h, &g).arg("--allow-data-outside"), 1);
        assert!(e.contains("character device"), "{e}");
        let e = status(&mut eval(&h, &g), 1);
        assert!(e.contains("outside"), "{e}");
    }
    let m = dir.join("z.mhd");
    mhd(&m, "/dev/zero");
    let e = status(eval(&m, &g).arg("--allow-data-outside"), 1);
    assert!(e.contains("character device"), "{e}");

    // Directory mode: a FIFO among the cases is skipped with its reason, the rest evaluated.
    let (pd, gd) = (dir.join("pd"), dir.join("gd"));
    std::fs::create_dir(&pd).unwrap();
    std::fs::create_dir(&gd).unwrap();
    std::fs::copy(&p, pd.join("a.nii")).unwrap();
    std::fs::copy(&g, gd.join("a.nii")).unwrap();
    mkfifo(&pd.join("b.nii"));
    std::fs::copy(&g, gd.join("b.nii")).unwrap();
    let (out, _) = bounded(
        dice()
            .arg("eval")
            .arg(&pd)
            .arg(&gd)
            .args(["--format", "json"]),
        60,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(j["cases"][0]["case"], "a");
    let skipped = j["skipped"].as_array().unwrap();
    assert!(
        skipped
            .iter()
            .any(|s| s["path"].as_str().unwrap().ends_with("pd/b.nii")
                && s["reason"].as_str().unwrap().contains("FIFO")),
        "{j}"
    );
}

/// Reads over a source longer than the header claims stop at a budget derived from the claim.
#[test]
fn reads_are_bounded_by_the_header_claim() {
    let dir = tmp("budget");
    let (_, g) = small_pair(&dir);
    // ascii: 64 values claimed, 3 MiB of numbers supplied.
    let text: String = "1 ".repeat(3 << 19);
    std::fs::write(dir.join("a.txt"), text).unwrap();
    nhdr(&dir.join("a.nhdr"), "uint8", "ascii", "a.txt", "");
    let e = status(&mut eval(&dir.join("a.nhdr"), &g), 1);
    assert!(e.contains("a.txt") && e.contains("longer than"), "{e}");
    // A line skip over a 200 MiB file without newlines (sparse: costs no disk).
    let f = std::fs::File::create(dir.join("flat.raw")).unwrap();
    f.set_len(200 << 20).unwrap();
    nhdr(
        &dir.join("l.nhdr"),
        "uint8",
        "raw",
        "flat.raw",
        "line skip: 1\n",
    );
    let (out, took) = bounded(&mut eval(&dir.join("l.nhdr"), &g), 60);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("line skip"), "{e}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    // Data the error must not quote: not numbers, with a marker.
    std::fs::write(dir.join("b.txt"), "1 2 3 SECRET-MARKER-77 5").unwrap();
    nhdr(&dir.join("b.nhdr"), "uint8", "ascii", "b.txt", "");
    let e = status(&mut eval(&dir.join("b.nhdr"), &g), 1);
    assert!(!e.contains("SECRET-MARKER"), "{e}");
    assert!(e.contains("value 3 (counting from 0)"), "{e}");
    // gzip with a line skip: allowed (teem skips lines of the compressed file's bytes).
    let data = small_pred();
    let mut raw = b"comment line\n".to_vec();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &data).unwrap();
    raw.extend(enc.finish().unwrap());
    std::fs::write(dir.join("c.raw.gz"), raw).unwrap();
    nhdr(
        &dir.join("c.nhdr"),
        "uint8",
        "gzip",
        "c.raw.gz",
        "line skip: 1\n",
    );
    std::fs::write(dir.join("c.raw"), &data).unwrap();
    nhdr(&dir.join("r.nhdr"), "uint8", "raw", "c.raw", "");
    assert_eq!(
        ok(eval(&dir.join("c.nhdr"), &g).args(["--format", "json"])).replace("c.nhdr", "r.nhdr"),
        ok(eval(&dir.join("r.nhdr"), &g).args(["--format", "json"]))
    );
}

// ---- outputs ----------------------------------------------------------------------------

#[test]
fn outputs_never_replace_inputs_or_special_files() {
    let dir = tmp("outputs");
    let (p, g) = small_pair(&dir);
    let data = small_pred();
    std::fs::write(dir.join("data.raw"), &data).unwrap();
    mhd(&dir.join("m.mhd"), "data.raw");
    let gm = mhd_reference(&dir);
    // The data file of an .mhd under another name than the header's: refused, kept intact.
    let e = status(
        eval(&dir.join("m.mhd"), &gm)
            .arg("--output")
            .arg(dir.join("data.raw")),
        1,
    );
    assert!(e.contains("data.raw") && e.contains("read"), "{e}");
    assert_eq!(std::fs::read(dir.join("data.raw")).unwrap(), data);
    // A hard link of an input, and a symlink to one.
    std::fs::hard_link(&g, dir.join("hard.csv")).unwrap();
    symlink(&g, dir.join("soft.csv")).unwrap();
    let before = std::fs::read(&g).unwrap();
    for name in ["hard.csv", "soft.csv"] {
        let mut c = eval(&p, &g);
        c.arg("--output").arg(dir.join(name));
        let (out, _) = bounded(&mut c, 60);
        assert!(!out.status.success());
        assert_eq!(std::fs::read(&g).unwrap(), before);
    }
    // A FIFO named on purpose stays a FIFO and receives the report.
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    ok(eval(&p, &g)
        .args(["--format", "csv", "--output"])
        .arg(&fifo));
    assert!(reader.join().unwrap().starts_with("case,label,dice"));
    let ft = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&ft));
    // /dev/null is written in place (and stays a device); /dev/full is a reported failure.
    ok(eval(&p, &g).args(["--output", "/dev/null"]));
    let e = status(eval(&p, &g).args(["--output", "/dev/full"]), 1);
    assert!(e.contains("/dev/full") && e.contains("cannot write"), "{e}");
    // A symlink to /proc/self/fd/1: the report goes to standard output (a pipe here).
    symlink("/proc/self/fd/1", dir.join("stdout.csv")).unwrap();
    let text = ok(eval(&p, &g)
        .args(["--format", "csv", "--output"])
        .arg(dir.join("stdout.csv")));
    assert!(text.contains("case,label,dice"), "{text}");
    assert!(std::fs::symlink_metadata(dir.join("stdout.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    // New outputs get the umask's permissions (0666 & ~022 here); a replaced file keeps its
    // own; a symlink to a regular file stays a symlink and its target is replaced.
    let out = dir.join("new.csv");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 022 && exec \"$0\" eval \"$1\" \"$2\" --output \"$3\"")
        .arg(env!("CARGO_BIN_EXE_dice"))
        .arg(&p)
        .arg(&g)
        .arg(&out);
    ok(&mut c);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(eval(&p, &g).arg("--output").arg(&out));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    symlink("new.csv", dir.join("via.csv")).unwrap();
    ok(eval(&p, &g)
        .args(["--format", "json", "--output"])
        .arg(dir.join("via.csv")));
    assert!(std::fs::symlink_metadata(dir.join("via.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    json(&std::fs::read_to_string(&out).unwrap());
    // A dangling symlink is not followed to create a file elsewhere.
    symlink(dir.join("nowhere/x.csv"), dir.join("dangling.csv")).unwrap();
    let e = status(
        eval(&p, &g).arg("--output").arg(dir.join("dangling.csv")),
        1,
    );
    assert!(e.contains("dangling.csv"), "{e}");
    // A symlink loop is an error naming it.
    symlink("loop2.csv", dir.join("loop1.csv")).unwrap();
    symlink("loop1.csv", dir.join("loop2.csv")).unwrap();
    let (out, _) = bounded(eval(&p, &g).arg("--output").arg(dir.join("loop1.csv")), 60);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loop1.csv"));
    let (out, _) = bounded(&mut eval(&dir.join("loop1.csv"), &g), 60);
    assert_eq!(out.status.code(), Some(1));
}

// ---- values and geometry ----------------------------------------------------------------

/// A uint8 prediction against an int16 reference with `--ignore-label -1`: labels compared as
/// values, the ignore label never cast to 255.
#[test]
fn labels_are_values_across_types() {
    let dir = tmp("mixed");
    let n = 64usize;
    let pred: Vec<u8> = (0..n).map(|i| [0u8, 1, 2, 255][i % 4]).collect();
    let gt: Vec<i16> = (0..n).map(|i| [0i16, 1, -1, 2, 1][i % 5]).collect();
    std::fs::write(dir.join("p.raw"), &pred).unwrap();
    let gt_bytes: Vec<u8> = gt.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("g.raw"), gt_bytes).unwrap();
    nhdr(
        &dir.join("p.nhdr"),
        "uint8",
        "raw",
        "p.raw",
        "endian: little\n",
    );
    nhdr(
        &dir.join("g.nhdr"),
        "int16",
        "raw",
        "g.raw",
        "endian: little\n",
    );
    let j = json(&ok(eval(&dir.join("p.nhdr"), &dir.join("g.nhdr")).args([
        "--ignore-label",
        "-1",
        "--labels",
        "1,2,255",
        "--format",
        "json",
    ])));
    // dice-core on the values, with the reference's -1 excluded.
    let keep: Vec<usize> = (0..n).filter(|&i| gt[i] != -1).collect();
    let p64: Vec<i64> = keep.iter().map(|&i| pred[i] as i64).collect();
    let g64: Vec<i64> = keep.iter().map(|&i| gt[i] as i64).collect();
    let mut want = vec![Confusion::default(); 256];
    hard::label_confusion(&p64, &g64, None, &mut want).unwrap();
    let rows = j["cases"][0]["labels"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let l = row["label"].as_i64().unwrap() as usize;
        let d = want[l].dice(EmptyPolicy::DEFAULT).unwrap();
        assert_eq!(row["dice"].as_f64().unwrap(), d, "label {l}: {j}");
    }
    // The 255s of the prediction are a label of their own, not the reference's -1.
    assert_eq!(rows[2]["label"], 255);
    assert_eq!(rows[2]["dice"].as_f64().unwrap(), 0.0);
}

/// ASCII integers are parsed as integers: 2^53 + 1 stays itself.
#[test]
fn ascii_integers_are_exact_to_64_bits() {
    let dir = tmp("ascii64");
    let big = (1i64 << 53) + 1;
    let values: Vec<String> = (0..64)
        .map(|i| {
            if i % 2 == 0 {
                big.to_string()
            } else {
                "0".into()
            }
        })
        .collect();
    std::fs::write(dir.join("a.txt"), values.join("\n")).unwrap();
    nhdr(&dir.join("a.nhdr"), "int64", "ascii", "a.txt", "");
    let v = dice_cli::formats::read(&dir.join("a.nhdr")).unwrap();
    let Data::I64(d) = v.data else {
        panic!("int64 expected")
    };
    assert_eq!(d[0], big);
    assert_eq!(d[1], 0);
    // Out of the declared type's range, or a fraction for an integer type: an error by index.
    std::fs::write(dir.join("b.txt"), "1 2 256 ".repeat(22)).unwrap();
    nhdr(&dir.join("b.nhdr"), "uint8", "ascii", "b.txt", "");
    let e = dice_cli::formats::read(&dir.join("b.nhdr")).unwrap_err();
    assert!(
        e.contains("value 2 (counting from 0)") && e.contains("[0, 255]"),
        "{e}"
    );
    std::fs::write(dir.join("c.txt"), "1.5 ".repeat(64)).unwrap();
    nhdr(&dir.join("c.nhdr"), "int32", "ascii", "c.txt", "");
    assert!(dice_cli::formats::read(&dir.join("c.nhdr")).is_err());
}

/// Patches a single-file NIfTI-1 written by `nifti::write` (352-byte header).
fn patch(path: &Path, edits: &[(usize, &[u8])]) {
    let mut b = std::fs::read(path).unwrap();
    for (o, bytes) in edits {
        b[*o..*o + bytes.len()].copy_from_slice(bytes);
    }
    std::fs::write(path, b).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn corrupt_geometry_and_scaling_are_errors() {
    let dir = tmp("geometry");
    let (p, g) = small_pair(&dir);
    let copy = |name: &str| {
        let to = dir.join(name);
        std::fs::copy(&g, &to).unwrap();
        to
    };
    // A qform quaternion of length 2 is not a rotation.
    let q = copy("q.nii");
    patch(
        &q,
        &[(252, &1i16.to_le_bytes()), (256, &f32s(&[2.0, 0.0, 0.0]))],
    );
    let e = status(&mut eval(&p, &q), 1);
    assert!(e.contains("q.nii") && e.contains("quaternion"), "{e}");
    let (out, _) = bounded(eval(&p, &q).arg("--ignore-geometry"), 60);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Within float32 rounding of 1 (|q|² = 1 + 2.4e-7, a 180° turn about z as written in
    // float32): renormalised, accepted (the same in both files, so they align).
    let turn: &[(usize, &[u8])] = &[
        (252, &1i16.to_le_bytes()),
        (256, &f32s(&[0.0, 0.0, 1.000_000_1])),
    ];
    let (pr, r) = (dir.join("pr.nii"), copy("r.nii"));
    std::fs::copy(&p, &pr).unwrap();
    patch(&pr, turn);
    patch(&r, turn);
    ok(&mut eval(&pr, &r));
    // A sheared sform.
    let s = copy("s.nii");
    patch(
        &s,
        &[
            (254, &1i16.to_le_bytes()),
            (280, &f32s(&[1.0, 0.5, 0.0, 0.0])),
            (296, &f32s(&[0.0, 1.0, 0.0, 0.0])),
            (312, &f32s(&[0.0, 0.0, 1.0, 0.0])),
        ],
    );
    let e = status(&mut eval(&p, &s), 1);
    assert!(e.contains("s.nii") && e.contains("shear"), "{e}");
    ok(eval(&p, &s).arg("--ignore-geometry"));
    // Tiny spacing (pixdim 1e-30) is outside [1e-6, 1e6] mm.
    let t = copy("t.nii");
    patch(&t, &[(80, &f32s(&[1e-30, 1.0, 1.0]))]);
    let e = status(&mut eval(&p, &t), 1);
    assert!(e.contains("t.nii") && e.contains("spacing"), "{e}");
    // scl_inter NaN with a real slope: an error; slope NaN (or 0): no scaling, as nibabel.
    let n = copy("n.nii");
    patch(&n, &[(112, &f32s(&[2.0, f32::NAN]))]);
    let e = status(&mut eval(&p, &n), 1);
    assert!(e.contains("n.nii") && e.contains("scl_inter"), "{e}");
    let i = copy("i.nii");
    patch(&i, &[(112, &f32s(&[f32::INFINITY, 0.0]))]);
    let e = status(&mut eval(&p, &i), 1);
    assert!(e.contains("scl_slope"), "{e}");
    let m = copy("m.nii");
    patch(&m, &[(112, &f32s(&[f32::NAN, f32::NAN]))]);
    assert_eq!(
        ok(eval(&p, &m).args(["--format", "csv"])),
        ok(eval(&p, &g).args(["--format", "csv"]))
    );
    // --spacing outside [1e-6, 1e6] mm is a usage error.
    for bad in ["1e-200", "1e200", "inf", "nan,1,1"] {
        let e = status(eval(&p, &g).args(["--spacing", bad]), 2);
        assert!(e.contains("--spacing"), "{e}");
    }
}

// ---- cost -------------------------------------------------------------------------------

/// Runs a CSV evaluation at 1 mm spacing (bounded), expects success; returns the CSV and the
/// time it took.
fn timed(cmd: &mut Command) -> (String, Duration) {
    let (out, took) = bounded(cmd.args(["--spacing", "1,1,1", "--format", "csv"]), 120);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8(out.stdout).unwrap(), took)
}

fn write_u32(path: &Path, dims: [usize; 3], data: Vec<u32>) {
    npy::write(path, &Volume::new(dims.to_vec(), Data::U32(data))).unwrap();
}

/// 2^17 labels of `hd` on 128³, and 65,535 lesions under `--lesion-wise`: O(voxels +
/// surface) in total, not labels × voxels (before: > 20 s and > 15 s).
#[test]
fn many_labels_cost_what_their_voxels_cost() {
    let dir = tmp("many");
    let n = 128usize;
    let labels = 1u32 << 17;
    // Runs of 16 voxels along x, one label each; the prediction shifted by one voxel.
    let gt: Vec<u32> = (0..n * n * n)
        .map(|i| (i / 16) as u32 % labels + 1)
        .collect();
    let pred: Vec<u32> = (0..n * n * n)
        .map(|i| if i % n == 0 { 0 } else { gt[i - 1] })
        .collect();
    write_u32(&dir.join("p.npy"), [n, n, n], pred);
    write_u32(&dir.join("g.npy"), [n, n, n], gt);
    let (text, took) = timed(eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
        "--metrics",
        "dice,hd",
        "--max-labels",
        "200000",
    ]));
    assert_eq!(text.lines().count(), labels as usize + 1);
    eprintln!("2^17 labels of hd on 128^3: {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    // 65,535 labels of one single-voxel lesion each, a quarter missed by the prediction, under
    // --lesion-wise (every label's lesions matched); then the same as 65,535 lesions of one.
    let m = 256usize;
    let mut g = vec![0u32; m * m * 8];
    let mut p = vec![0u32; m * m * 8];
    let mut k = 0u32;
    for z in (0..8).step_by(2) {
        for y in (0..m).step_by(2) {
            for x in (0..m).step_by(2) {
                if k < 65_535 {
                    g[(z * m + y) * m + x] = k + 1;
                    if !k.is_multiple_of(4) {
                        p[(z * m + y) * m + x] = k + 1;
                    }
                    k += 1;
                }
            }
        }
    }
    let binary = |v: &[u32]| v.iter().map(|&x| (x != 0) as u32).collect::<Vec<u32>>();
    write_u32(&dir.join("bp.npy"), [m, m, 8], binary(&p));
    write_u32(&dir.join("bg.npy"), [m, m, 8], binary(&g));
    write_u32(&dir.join("lp.npy"), [m, m, 8], p);
    write_u32(&dir.join("lg.npy"), [m, m, 8], g);
    for (pn, gn, what) in [
        ("lp.npy", "lg.npy", "65,535 labels"),
        ("bp.npy", "bg.npy", "65,535 lesions of one label"),
    ] {
        let (text, took) = timed(eval(&dir.join(pn), &dir.join(gn)).args([
            "--lesion-wise",
            "--min-lesion-voxels",
            "0",
            "--lesion-dilation",
            "0",
            "--max-labels",
            "70000",
        ]));
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let head = r.headers().unwrap().clone();
        let col = |name: &str| head.iter().position(|h| h == name).unwrap();
        let (tp, fn_) = (col("lesion_tp"), col("lesion_fn"));
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        if pn == "lp.npy" {
            // Label k + 1 is missed when k % 4 == 0.
            assert_eq!(rows.len(), 65_535);
            for (k, row) in rows.iter().enumerate().step_by(997) {
                let missed = k % 4 == 0;
                assert_eq!(&row[fn_], if missed { "1" } else { "0" }, "{row:?}");
                assert_eq!(&row[tp], if missed { "0" } else { "1" }, "{row:?}");
            }
        } else {
            assert_eq!((&rows[0][tp], &rows[0][fn_]), ("49151", "16384"));
        }
        eprintln!("{what}, --lesion-wise: {took:?}");
        assert!(took < Duration::from_secs(20), "{took:?}");
    }
}

// ---- names ------------------------------------------------------------------------------

/// Control characters and invalid UTF-8 in names: opened exactly, shown escaped everywhere.
#[test]
fn hostile_names_are_opened_exactly_and_shown_escaped() {
    let root = tmp("names");
    let (pd, gd) = (root.join("p"), root.join("g"));
    std::fs::create_dir(&pd).unwrap();
    std::fs::create_dir(&gd).unwrap();
    let (p, g) = small_pair(&root);
    let raw: &[u8] = b"bad\x1b[31m\xff\xfename\xe2\x80\xae.nii";
    let name = OsStr::from_bytes(raw);
    std::fs::copy(&p, pd.join(name)).unwrap();
    std::fs::copy(&g, gd.join(name)).unwrap();
    let shown = "bad\\x1b[31m\\xff\\xfename\\u{202e}";
    for fmt in ["csv", "json", "table"] {
        let text = ok(dice().arg("eval").arg(&pd).arg(&gd).args(["--format", fmt]));
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text}"
        );
        if fmt == "json" {
            assert_eq!(json(&text)["cases"][0]["case"], shown, "{text}");
        } else {
            assert!(text.contains(shown), "{fmt}: {text}");
        }
    }
    let report = root.join("r.html");
    ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .arg("--report")
        .arg(&report));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains('\x1b'));
    // A single pair named directly: the same file is opened, its name escaped in errors too.
    ok(&mut eval(&pd.join(name), &gd.join(name)));
    let e = status(
        &mut eval(&pd.join(name), &root.join(OsStr::from_bytes(b"no\x07pe"))),
        1,
    );
    assert!(e.contains("no\\x07pe") && !e.contains('\x07'), "{e}");
}
