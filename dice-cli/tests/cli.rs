//! The `dice` binary as a user runs it: files written in each format, directories, pictures,
//! the value semantics, the geometry checks, the exit codes, the outputs, and every crash found
//! by hand or by fuzzing as a regression test; results checked against dice-core computed
//! directly on the same data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dice_cli::formats::{nifti, npy, png as pngf, tiff as tiff_f};
use dice_cli::geometry::Geometry;
use dice_cli::{Data, Volume};
use dice_core::hard::{self, Confusion, EmptyPolicy};

fn dice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dice"))
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the dice binary runs")
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs, expects exit status `code`, returns standard error.
fn status(cmd: &mut Command, code: i32) -> String {
    let out = run(cmd);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn fails(cmd: &mut Command) -> String {
    status(cmd, 1)
}

fn eval(p: &Path, g: &Path) -> Command {
    let mut c = dice();
    c.arg("eval").arg(p).arg(g);
    c
}

/// `(label, dice)` of `--format csv` output.
fn csv_dice(text: &str) -> Vec<(i64, f64)> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[1].parse().unwrap(), rec[2].parse().unwrap_or(f64::NAN))
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn vol2(w: usize, h: usize, d: Data) -> Volume {
    Volume::new(vec![w, h], d)
}

fn labels_2d(h: usize, w: usize, seed: usize) -> Vec<u8> {
    (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f64, (i % w) as f64);
            let d = ((y - 10.0 - seed as f64).powi(2) + (x - 12.0).powi(2)).sqrt();
            if d < 5.0 {
                1
            } else if (y - 20.0).abs() < 3.0 && (x - 24.0 - seed as f64).abs() < 4.0 {
                2
            } else {
                0
            }
        })
        .collect()
}

fn expected(pred: &[u8], gt: &[u8], labels: usize) -> Vec<Confusion> {
    let mut out = vec![Confusion::default(); labels];
    hard::label_confusion(pred, gt, None, &mut out).unwrap();
    out
}

#[test]
fn committed_sample_is_reproducible_and_evaluates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let out = tmp("sample");
    let (pred, gt) = dice_cli::sample::pair();
    nifti::write(&out.join("pred.nii.gz"), &pred).unwrap();
    nifti::write(&out.join("gt.nii.gz"), &gt).unwrap();
    for f in ["pred.nii.gz", "gt.nii.gz"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(out.join(f)).unwrap(),
            "{f}: run `cargo run -p dice-cli --example make_sample`"
        );
    }
    let text = ok(eval(&dir.join("pred.nii.gz"), &dir.join("gt.nii.gz")).args(["--format", "csv"]));
    let (Data::U8(p), Data::U8(g)) = (&pred.data, &gt.data) else {
        unreachable!()
    };
    let want = expected(p, g, 4);
    let got = csv_dice(&text);
    assert_eq!(got.len(), 3);
    for (label, d) in got {
        // CSV carries full precision: equal to the bit.
        assert_eq!(Some(d), want[label as usize].dice(EmptyPolicy::DEFAULT));
    }
}

#[test]
fn every_format_gives_the_same_counts() {
    let dir = tmp("formats");
    let (h, w) = (32, 40);
    let (p, g) = (labels_2d(h, w, 1), labels_2d(h, w, 0));
    let want = expected(&p, &g, 3);
    let v = |d: Vec<u8>| vol2(w, h, Data::U8(d));
    nifti::write(&dir.join("p.nii"), &v(p.clone())).unwrap();
    nifti::write(&dir.join("g.nii"), &v(g.clone())).unwrap();
    nifti::write(&dir.join("p.nii.gz"), &v(p.clone())).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &v(g.clone())).unwrap();
    npy::write(&dir.join("p.npy"), &v(p.clone())).unwrap();
    npy::write(&dir.join("g.npy"), &v(g.clone())).unwrap();
    pngf::write_gray(&dir.join("p.png"), w, h, &p).unwrap();
    pngf::write_gray(&dir.join("g.png"), w, h, &g).unwrap();
    tiff_f::write(&dir.join("p.tif"), &v(p.clone())).unwrap();
    tiff_f::write(&dir.join("g.tiff"), &v(g.clone())).unwrap();
    let u16v = |d: &[u8]| vol2(w, h, Data::U16(d.iter().map(|&x| x as u16).collect()));
    npy::write(&dir.join("p16.npy"), &u16v(&p)).unwrap();
    tiff_f::write(&dir.join("g16.tif"), &u16v(&g)).unwrap();
    npy::write(
        &dir.join("g64.npy"),
        &vol2(w, h, Data::I64(g.iter().map(|&x| x as i64).collect())),
    )
    .unwrap();
    for (a, b) in [
        ("p.nii", "g.nii"),
        ("p.nii.gz", "g.nii.gz"),
        ("p.npy", "g.npy"),
        ("p.png", "g.png"),
        ("p.tif", "g.tiff"),
        ("p.npy", "g.png"),
        ("p16.npy", "g16.tif"),
        ("p.png", "g64.npy"),
        ("p.nii", "g.png"),
    ] {
        let text = ok(eval(&dir.join(a), &dir.join(b)).args(["--format", "csv"]));
        let got = csv_dice(&text);
        assert_eq!(got.len(), 2, "{a} vs {b}: {text}");
        for (label, d) in got {
            assert_eq!(
                Some(d),
                want[label as usize].dice(EmptyPolicy::DEFAULT),
                "{a} vs {b} label {label}"
            );
        }
    }
}

fn write_npy(path: &Path, d: Data) {
    let n = d.len();
    npy::write(path, &Volume::new(vec![n], d)).unwrap();
}

#[test]
fn probability_maps_threshold_and_soft_dice() {
    let dir = tmp("prob");
    let n = 500;
    let p: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let g: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    write_npy(&dir.join("p.npy"), Data::F32(p.clone()));
    write_npy(&dir.join("g.npy"), Data::U8(g.clone()));
    let text = ok(eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
        "--threshold",
        "0.3",
        "--soft",
        "--smooth-nr",
        "1",
        "--smooth-dr",
        "1",
        "--format",
        "json",
    ]));
    let gf: Vec<f32> = g.iter().map(|&v| v as f32).collect();
    let c = hard::confusion_from_probabilities(&p, &gf, 0.3).unwrap();
    let s = dice_core::SoftStats::of(&p, &gf, dice_core::Moment::Linear).unwrap();
    let soft = dice_core::score::dice(s.intersection, s.pred, s.target, 1.0, 1.0).unwrap();
    let j = json(&text);
    let row = &j["cases"][0]["labels"][0];
    assert_eq!(row["dice"].as_f64(), c.dice(EmptyPolicy::DEFAULT), "{text}");
    // f32 sums carry a relative error of about 6e-7, in any order or chunking.
    assert!(
        (row["soft_dice"].as_f64().unwrap() - soft).abs() < 2e-6,
        "{text}"
    );
    assert_eq!(row["tp"].as_u64(), Some(c.tp));
    // Scores saved as if they were probabilities: an error naming the voxel, never "logits".
    let bad: Vec<f32> = p.iter().map(|&v| v * 4.0 - 2.5).collect();
    write_npy(&dir.join("scores.npy"), Data::F32(bad));
    let e = fails(&mut eval(&dir.join("scores.npy"), &dir.join("g.npy")));
    assert!(
        e.contains("scores.npy") && e.contains("index [") && e.contains("neither a label"),
        "{e}"
    );
    assert!(!e.to_lowercase().contains("logit"), "{e}");
    let e = fails(eval(&dir.join("g.npy"), &dir.join("g.npy")).arg("--soft"));
    assert!(e.contains("--soft needs a probability map"), "{e}");
}

/// Item 6: a probability map against a multi-label reference is refused unless --labels says
/// which reference labels to compare; --labels and --ignore-label apply to probability maps.
#[test]
fn probability_map_against_label_map() {
    let dir = tmp("prob-labels");
    let p: Vec<f32> = vec![0.9, 0.8, 0.1, 0.7, 0.2, 0.95, 0.6, 0.1];
    let g: Vec<u8> = vec![1, 1, 0, 2, 2, 255, 1, 0];
    write_npy(&dir.join("p.npy"), Data::F32(p));
    write_npy(&dir.join("g.npy"), Data::U8(g));
    let e = fails(&mut eval(&dir.join("p.npy"), &dir.join("g.npy")));
    assert!(e.contains("--labels") && e.contains("g.npy"), "{e}");
    let j = json(&ok(eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
        "--labels",
        "1,2",
        "--ignore-label",
        "255",
        "--format",
        "json",
    ])));
    let rows = j["cases"][0]["labels"].as_array().unwrap();
    // Label 1: reference voxels 0, 1, 6; predicted (p >= 0.5, voxel 5 ignored) 0, 1, 3, 6.
    assert_eq!(
        (
            rows[0]["tp"].as_u64(),
            rows[0]["fp"].as_u64(),
            rows[0]["fn"].as_u64(),
            rows[0]["tn"].as_u64()
        ),
        (Some(3), Some(1), Some(0), Some(3))
    );
    // Label 2: reference voxels 3, 4; predicted 0, 1, 3, 6.
    assert_eq!(
        (
            rows[1]["tp"].as_u64(),
            rows[1]["fp"].as_u64(),
            rows[1]["fn"].as_u64()
        ),
        (Some(1), Some(3), Some(1))
    );
    // A binary {0, 255} mask needs no --labels: its one label is the positive one.
    write_npy(
        &dir.join("m.npy"),
        Data::U8(vec![255, 255, 0, 0, 0, 0, 255, 0]),
    );
    let j = json(&ok(
        eval(&dir.join("p.npy"), &dir.join("m.npy")).args(["--format", "json"])
    ));
    assert_eq!(j["cases"][0]["labels"][0]["label"], 255);
}

/// Items 7 and 8: the ignore label in either file; precision is 0 with FPs on an empty
/// reference whatever the policy.
#[test]
fn label_selection_ignore_and_empty_policies() {
    let dir = tmp("labels");
    let pred: Vec<u8> = vec![1, 1, 0, 2, 3, 3, 0, 255, 9, 255];
    let gt: Vec<u8> = vec![1, 0, 0, 2, 0, 0, 255, 255, 255, 1];
    write_npy(&dir.join("p.npy"), Data::U8(pred));
    write_npy(&dir.join("g.npy"), Data::U8(gt));
    let csv = |args: &[&str]| {
        ok(eval(&dir.join("p.npy"), &dir.join("g.npy"))
            .args(["--format", "csv"])
            .args(args))
    };
    // 255 in the prediction (voxel 9) is ignored too; label 9 only appears where the reference is ignored.
    let text = csv(&["--ignore-label", "255"]);
    let got = csv_dice(&text);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "{text}"
    );
    assert_eq!(
        got[0].1,
        2.0 / 3.0,
        "voxel 9 (pred 255, ref 1) is no false negative: {text}"
    );
    assert_eq!(
        got[2].1, 0.0,
        "false positives on an empty reference score 0 by default"
    );
    let j = json(&ok(eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
        "--ignore-label",
        "255",
        "--empty-reference",
        "nan",
        "--labels",
        "3,4",
        "--empty",
        "one",
        "--format",
        "json",
    ])));
    let rows = j["cases"][0]["labels"].as_array().unwrap();
    assert_eq!(rows[0]["dice"], "NaN", "{j}");
    assert_eq!(
        rows[0]["precision"], 0.0,
        "precision 0/2 is defined whatever the policy: {j}"
    );
    assert_eq!(rows[0]["recall"], "NaN");
    assert_eq!(rows[1]["dice"], 1.0);
    let j = json(&ok(eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
        "--ignore-label",
        "255",
        "--labels",
        "4",
        "--format",
        "json",
    ])));
    assert!(
        j["cases"][0]["labels"][0]["dice"].is_null(),
        "skipped is null: {j}"
    );
    assert!(csv(&["--ignore-label", "255", "--include-background"])
        .lines()
        .nth(1)
        .unwrap()
        .contains(",0,"));
    // Without the ignore label, 255 and 9 are just labels.
    assert_eq!(csv_dice(&csv(&[])).len(), 5);
}

/// Item 4: float label maps, scaled probability maps, --as.
#[test]
fn value_semantics_are_said_never_guessed() {
    let dir = tmp("semantics");
    let g: Vec<u8> = (0..64).map(|i| (i % 4) as u8).collect();
    write_npy(&dir.join("g.npy"), Data::U8(g.clone()));
    write_npy(
        &dir.join("gf.npy"),
        Data::F32(g.iter().map(|&x| x as f32).collect()),
    );
    let out = run(eval(&dir.join("gf.npy"), &dir.join("g.npy")).args(["--format", "csv"]));
    assert!(out.status.success());
    assert_eq!(
        csv_dice(&String::from_utf8_lossy(&out.stdout)),
        [(1, 1.0), (2, 1.0), (3, 1.0)]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("all integers"),
        "a note says how it was read"
    );
    // --as labels on a real probability map: a clear error.
    write_npy(
        &dir.join("p.npy"),
        Data::F32((0..64).map(|i| i as f32 / 64.0).collect()),
    );
    let e = fails(eval(&dir.join("p.npy"), &dir.join("g.npy")).args(["--as", "labels"]));
    assert!(
        e.contains("not an integer") && e.contains("--as labels"),
        "{e}"
    );
    let e = status(
        eval(&dir.join("p.npy"), &dir.join("g.npy")).args([
            "--as",
            "labels",
            "--pred-as",
            "labels",
        ]),
        2,
    );
    assert!(e.contains("cannot be used"), "{e}");
    // A softmax output with one channel per class: a hint, not just "sizes differ".
    npy::write(
        &dir.join("softmax.npy"),
        &Volume::new(vec![64, 4], Data::F32(vec![0.25; 256])),
    )
    .unwrap();
    let e = fails(&mut eval(&dir.join("softmax.npy"), &dir.join("g.npy")));
    assert!(
        e.contains("extra axis of size 4") && e.contains("argmax"),
        "{e}"
    );
    // An intensity image: refused with the reason.
    write_npy(
        &dir.join("ct.npy"),
        Data::I32((0..2000).map(|i| i - 1000).collect()),
    );
    write_npy(&dir.join("ct_pos.npy"), Data::U16((0..2000).collect()));
    let e = fails(&mut eval(&dir.join("ct_pos.npy"), &dir.join("ct_pos.npy")));
    assert!(
        e.contains("intensity image") && e.contains("--max-labels"),
        "{e}"
    );
    let e = fails(&mut eval(&dir.join("ct.npy"), &dir.join("ct.npy")));
    assert!(
        e.contains("negative label -1000") && e.contains("index [0]"),
        "{e}"
    );
    assert!(
        ok(
            eval(&dir.join("ct_pos.npy"), &dir.join("ct_pos.npy")).args([
                "--max-labels",
                "5000",
                "--format",
                "csv"
            ])
        )
        .lines()
        .count()
            == 2000
    );
}

/// Item 13: the panics found by hand and by fuzzing, each a regression test.
#[test]
fn regressions_of_panics() {
    let dir = tmp("panics");
    write_npy(&dir.join("a.npy"), Data::U8(vec![0, 1, 2, 1]));
    write_npy(&dir.join("huge.npy"), Data::I64(vec![0, 1, i64::MAX, 1]));
    let (a, huge) = (dir.join("a.npy"), dir.join("huge.npy"));
    status(eval(&a, &a).arg("--labels=-1"), 2);
    let j = json(&ok(eval(&a, &a).args([
        "--labels=9223372036854775807",
        "--format",
        "json",
    ])));
    assert!(j["cases"][0]["labels"][0]["dice"].is_null());
    // i64::MAX as a reference's ignore label, and as a label.
    ok(eval(&a, &huge).args(["--ignore-label", "9223372036854775807"]));
    let j = json(&ok(eval(&huge, &huge).args(["--format", "json"])));
    assert_eq!(j["cases"][0]["labels"][1]["label"], i64::MAX);
    // .npy descr empty or not ASCII.
    for (name, descr) in [
        ("empty.npy", "''"),
        ("utf.npy", "'\u{e9}\u{e9}'"),
        ("one.npy", "'<'"),
    ] {
        let h = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (2,), }}\n");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&[0; 16]);
        std::fs::write(dir.join(name), b).unwrap();
        assert!(fails(&mut eval(&dir.join(name), &a)).contains(name));
    }
    // --threads 1000: capped at the cores and the pairs.
    let (pd, gd) = (dir.join("pd"), dir.join("gd"));
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::create_dir_all(&gd).unwrap();
    std::fs::copy(&a, pd.join("x.npy")).unwrap();
    std::fs::copy(&a, gd.join("x.npy")).unwrap();
    ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--threads", "1000"]));
    status(
        dice()
            .arg("eval")
            .arg(&pd)
            .arg(&gd)
            .args(["--threads", "0"]),
        2,
    );
    // A closed standard output ends the program quietly.
    let mut child = dice()
        .arg("eval")
        .arg(&huge)
        .arg(&huge)
        .args(["--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(0));
}

/// Item 15: every invalid option value is a usage error (2) before any file is decoded (the
/// files here do not even exist).
#[test]
fn usage_errors_exit_2_before_decoding() {
    let (p, g) = (
        Path::new("/nonexistent/p.nii"),
        Path::new("/nonexistent/g.nii"),
    );
    for args in [
        vec!["--threshold", "1.5"],
        vec!["--threshold", "nan"],
        vec!["--smooth-nr", "-1", "--soft"],
        vec!["--smooth-nr", "1"],
        vec!["--geometry-tolerance", "-0.1"],
        vec!["--max-labels", "0"],
        vec!["--precision", "40"],
        vec!["--slice", "3"],
        vec!["--labels", "-3"],
        vec!["--labels", "1,2", "--ignore-label", "2"],
        vec!["--empty", "maybe"],
        vec!["--format", "xml"],
        vec!["--as", "intensity"],
    ] {
        let e = status(eval(p, g).args(&args), 2);
        assert!(!e.contains("cannot open"), "{args:?}: {e}");
    }
    assert_eq!(
        run(dice().arg("eval").arg("only-one")).status.code(),
        Some(2)
    );
}

#[test]
fn errors_name_the_files_and_voxels() {
    let dir = tmp("errors");
    let mut a = Volume::new(vec![4, 5, 6], Data::U8(vec![1; 120]));
    a.geometry = Some(Geometry::diagonal([1.0, 1.0, 2.0], "pixdim"));
    let mut b = a.clone();
    b.geometry = Some(Geometry::diagonal([1.0, 1.0, 2.2], "pixdim"));
    let mut c = a.clone();
    c.dims = vec![6, 5, 4];
    nifti::write(&dir.join("a.nii.gz"), &a).unwrap();
    nifti::write(&dir.join("b.nii.gz"), &b).unwrap();
    nifti::write(&dir.join("c.nii"), &c).unwrap();
    let e = fails(&mut eval(&dir.join("a.nii.gz"), &dir.join("b.nii.gz")));
    assert!(
        e.contains("not on the same grid") && e.contains("a.nii.gz") && e.contains("b.nii.gz"),
        "{e}"
    );
    // float32 header fields are printed as they were meant.
    assert!(e.contains("2.2") && !e.contains("2.2000000476"), "{e}");
    let e = fails(&mut eval(&dir.join("a.nii.gz"), &dir.join("c.nii")));
    assert!(e.contains("a.nii.gz") && e.contains("c.nii"), "{e}");
    // --ignore-geometry compares as stored, with a note.
    let out = run(eval(&dir.join("a.nii.gz"), &dir.join("b.nii.gz")).arg("--ignore-geometry"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--ignore-geometry"));
    // A 4th axis's spacing is no reason to refuse.
    let mut t1 = Volume::new(vec![4, 5, 6, 2], Data::U8(vec![1; 240]));
    t1.geometry = a.geometry.clone();
    nifti::write(&dir.join("t1.nii"), &t1).unwrap();
    let mut bytes = std::fs::read(dir.join("t1.nii")).unwrap();
    bytes[92..96].copy_from_slice(&3.5f32.to_le_bytes()); // pixdim[4]
    std::fs::write(dir.join("t2.nii"), bytes).unwrap();
    ok(&mut eval(&dir.join("t1.nii"), &dir.join("t2.nii")));
    // Truncated and corrupt files.
    let full = std::fs::read(dir.join("c.nii")).unwrap();
    std::fs::write(dir.join("short.nii"), &full[..full.len() - 10]).unwrap();
    let e = fails(&mut eval(&dir.join("short.nii"), &dir.join("c.nii")));
    assert!(e.contains("short.nii") && e.contains("truncated"), "{e}");
    std::fs::write(dir.join("junk.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    assert!(fails(&mut eval(&dir.join("junk.png"), &dir.join("junk.png"))).contains("junk.png"));
    let e = fails(&mut eval(&dir.join("x.txt"), &dir.join("a.nii.gz")));
    assert!(
        e.contains("unknown file type") && e.contains("x.txt"),
        "{e}"
    );
    // A negative label is named by its voxel coordinates.
    let mut neg = Volume::new(vec![3, 2, 2], Data::I32(vec![0; 12]));
    if let Data::I32(v) = &mut neg.data {
        v[1 + 3 + 6] = -4; // voxel (1, 1, 1) of 3×2×2
    }
    nifti::write(&dir.join("neg.nii"), &neg).unwrap();
    let e = fails(&mut eval(&dir.join("neg.nii"), &dir.join("neg.nii")));
    assert!(e.contains("negative label -4 at voxel (1, 1, 1)"), "{e}");
}

#[test]
fn reoriented_pairs_score_as_the_same_image() {
    let dir = tmp("reorient");
    let (nx, ny, nz) = (6usize, 5usize, 4usize);
    let g: Vec<u8> = (0..nx * ny * nz).map(|i| ((i * 7) % 5 % 3) as u8).collect();
    let mut gv = Volume::new(vec![nx, ny, nz], Data::U8(g.clone()));
    gv.geometry = Some(Geometry {
        affine: [
            [2.0, 0.0, 0.0, -10.0],
            [0.0, 1.5, 0.0, 20.0],
            [0.0, 0.0, 3.0, 5.0],
        ],
        source: "sform",
    });
    // The same mask stored with y reversed, the affine adjusted.
    let mut flipped = vec![0u8; g.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                flipped[(z * ny + (ny - 1 - y)) * nx + x] = g[(z * ny + y) * nx + x];
            }
        }
    }
    let mut pv = Volume::new(vec![nx, ny, nz], Data::U8(flipped));
    pv.geometry = Some(Geometry {
        affine: [
            [2.0, 0.0, 0.0, -10.0],
            [0.0, -1.5, 0.0, 20.0 + 1.5 * (ny - 1) as f64],
            [0.0, 0.0, 3.0, 5.0],
        ],
        source: "sform",
    });
    nifti::write(&dir.join("g.nii.gz"), &gv).unwrap();
    nifti::write(&dir.join("p.nii.gz"), &pv).unwrap();
    let out = run(eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz")).args(["--format", "json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&String::from_utf8_lossy(&out.stdout));
    for r in j["cases"][0]["labels"].as_array().unwrap() {
        assert_eq!(r["dice"], 1.0, "{j}");
    }
    assert!(
        j["cases"][0]["notes"].to_string().contains("reoriented"),
        "{j}"
    );
    // Without the geometry check the same pair is compared as stored, and disagrees.
    let text = ok(eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz")).args([
        "--ignore-geometry",
        "--format",
        "csv",
    ]));
    assert!(csv_dice(&text).iter().any(|&(_, d)| d < 1.0));
}

#[test]
fn directories_pair_by_name_list_what_they_skip_and_do_not_depend_on_threads() {
    let pd = tmp("dir-pred");
    let gd = tmp("dir-gt");
    for k in 0..7 {
        let (p, g) = (labels_2d(32, 40, k % 3 + 1), labels_2d(32, 40, 0));
        pngf::write_gray(&pd.join(format!("case{k:02}.png")), 40, 32, &p).unwrap();
        npy::write(
            &gd.join(format!("case{k:02}.npy")),
            &vol2(40, 32, Data::U8(g)),
        )
        .unwrap();
    }
    pngf::write_gray(&pd.join("extra.png"), 40, 32, &labels_2d(32, 40, 0)).unwrap();
    pngf::write_gray(&gd.join("lonely.png"), 40, 32, &labels_2d(32, 40, 0)).unwrap();
    // A name clash, a subfolder, a non-image file, a quoted-worthy name.
    pngf::write_gray(&gd.join("twice.png"), 40, 32, &labels_2d(32, 40, 0)).unwrap();
    npy::write(
        &gd.join("twice.npy"),
        &vol2(40, 32, Data::U8(labels_2d(32, 40, 0))),
    )
    .unwrap();
    std::fs::create_dir_all(pd.join("sub")).unwrap();
    std::fs::write(pd.join("notes.txt"), "x").unwrap();
    let json_out = |threads: &str| {
        ok(dice()
            .arg("eval")
            .arg(&pd)
            .arg(&gd)
            .args(["--format", "json", "--threads", threads]))
    };
    let one = json_out("1");
    assert_eq!(one, json_out("2"));
    assert_eq!(one, json_out("5"));
    let j = json(&one);
    let skipped = j["skipped"].to_string();
    for what in [
        "extra.png",
        "lonely.png",
        "twice.png",
        "twice.npy",
        "sub",
        "notes.txt",
        "name clash",
        "subfolder",
        "not an image",
    ] {
        assert!(skipped.contains(what), "{what}: {skipped}");
    }
    assert!(j["summary"].to_string().contains("\"defined\":7"));
    let table = ok(dice().arg("eval").arg(&pd).arg(&gd));
    assert!(
        table.contains("summary over cases")
            && table.contains("median")
            && table.contains("skipped:")
    );
    // A failing case is reported, the others still evaluated, and the exit status is 1.
    std::fs::write(pd.join("case03.png"), b"broken").unwrap();
    let out = run(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--format", "csv"]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("case03,") && text.contains("not a valid PNG"),
        "{text}"
    );
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let cases = r
        .records()
        .filter(|rec| rec.as_ref().unwrap()[0].starts_with("case"))
        .count();
    assert_eq!(cases, 6 * 2 + 1);
}

/// Item 16: any file name survives CSV and JSON; full precision round-trips.
#[test]
fn outputs_quote_any_name_and_keep_full_precision() {
    let pd = tmp("names-pred");
    let gd = tmp("names-gt");
    let name = "odd, \"name\"\r\nwith\ttabs";
    // Control characters are shown escaped in every output (dice_cli::names).
    let shown = "odd, \"name\"\\x0d\\x0awith\\x09tabs";
    let (p, g) = (labels_2d(32, 40, 1), labels_2d(32, 40, 0));
    npy::write(
        &pd.join(format!("{name}.npy")),
        &vol2(40, 32, Data::U8(p.clone())),
    )
    .unwrap();
    npy::write(
        &gd.join(format!("{name}.npy")),
        &vol2(40, 32, Data::U8(g.clone())),
    )
    .unwrap();
    let want = expected(&p, &g, 3);
    let text = ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--format", "csv"]));
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(recs.len(), 2);
    assert_eq!(&recs[0][0], shown);
    assert_eq!(
        recs[0][2].parse::<f64>().unwrap(),
        want[1].dice(EmptyPolicy::DEFAULT).unwrap()
    );
    let j = json(&ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--format", "json"])));
    assert_eq!(j["cases"][0]["case"], shown);
    assert_eq!(
        j["cases"][0]["labels"][1]["dice"].as_f64(),
        want[2].dice(EmptyPolicy::DEFAULT)
    );
    // --precision rounds the table only.
    let t = ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--precision", "2"]));
    assert!(t.contains(&format!(
        "{:.2}",
        want[1].dice(EmptyPolicy::DEFAULT).unwrap()
    )));
}

/// Item 14: outputs never overwrite inputs, and are written whole or not at all.
#[test]
fn outputs_never_overwrite_inputs() {
    let dir = tmp("overwrite");
    let (pred, gt) = dice_cli::sample::pair();
    nifti::write(&dir.join("p.nii.gz"), &pred).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &gt).unwrap();
    let before = std::fs::read(dir.join("g.nii.gz")).unwrap();
    let (p, g) = (dir.join("p.nii.gz"), dir.join("g.nii.gz"));
    let e = status(eval(&p, &g).arg("--output").arg(&g), 2);
    assert!(e.contains("input file"), "{e}");
    let e = status(eval(&p, &g).arg("--overlay").arg(dir.join("./p.nii.gz")), 2);
    assert!(e.contains("png") || e.contains("input"), "{e}");
    status(eval(&p, &g).arg("--overlay").arg(dir.join("x.tif")), 2);
    assert_eq!(std::fs::read(&g).unwrap(), before);
    // Directory mode: nothing inside the input directories.
    let e = status(
        dice()
            .arg("eval")
            .arg(&dir)
            .arg(&dir)
            .arg("--output")
            .arg(dir.join("report.csv")),
        2,
    );
    assert!(e.contains("inside the input directory"), "{e}");
    // The output replaces an old report atomically; no temporary file is left behind.
    let out_dir = tmp("overwrite-out");
    std::fs::write(out_dir.join("r.json"), "old").unwrap();
    ok(eval(&p, &g)
        .args(["--format", "json", "--output"])
        .arg(out_dir.join("r.json")));
    json(&std::fs::read_to_string(out_dir.join("r.json")).unwrap());
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1);
}

#[test]
fn overlay_and_output_file() {
    let dir = tmp("overlay");
    let (pred, gt) = dice_cli::sample::pair();
    nifti::write(&dir.join("p.nii.gz"), &pred).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &gt).unwrap();
    let out = run(eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz"))
        .arg("--overlay")
        .arg(dir.join("o.png"))
        .args(["--slice", "12", "--output"])
        .arg(dir.join("r.csv"))
        .args(["--format", "csv"]));
    assert!(out.status.success());
    assert!(std::fs::read_to_string(dir.join("r.csv"))
        .unwrap()
        .starts_with("case,label,dice"));
    // Count the overlay's green pixels: the true positives of slice 12.
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.join("o.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buf).unwrap();
    let green = buf.chunks(3).filter(|c| c == &[0, 200, 0]).count();
    let (Data::U8(p), Data::U8(g)) = (&pred.data, &gt.data) else {
        unreachable!()
    };
    let plane = 40 * 40;
    let tp = (12 * plane..13 * plane)
        .filter(|&i| p[i] != 0 && p[i] == g[i])
        .count();
    assert_eq!(green, tp);
    // With --labels 1 only label 1 is drawn: the overlay agrees with the numbers.
    ok(eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz"))
        .args(["--labels", "1", "--overlay"])
        .arg(dir.join("o1.png"))
        .args(["--slice", "12"]));
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.join("o1.png")).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    reader.next_frame(&mut buf).unwrap();
    let green1 = buf.chunks(3).filter(|c| c == &[0, 200, 0]).count();
    let tp1 = (12 * plane..13 * plane)
        .filter(|&i| p[i] == 1 && g[i] == 1)
        .count();
    assert_eq!(green1, tp1);
    let e = fails(
        eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz"))
            .arg("--overlay")
            .arg(dir.join("x.png"))
            .args(["--slice", "99"]),
    );
    assert!(e.contains("slice 99"), "{e}");
}

fn peak_of(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    err.lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .unwrap()
        .trim_end_matches(" bytes")
        .parse()
        .unwrap()
}

/// Peak memory of the two pairs the issue names, against the size of their volumes.
#[test]
fn memory_of_large_pairs() {
    let dir = tmp("big");
    let n = 512usize;
    let mut g = vec![0u8; n * n * n];
    for (i, v) in g.iter_mut().enumerate() {
        let (x, y, z) = (
            (i % n) as f64 - 256.0,
            ((i / n) % n) as f64 - 256.0,
            (i / (n * n)) as f64 - 256.0,
        );
        if x * x + y * y + z * z < 150.0 * 150.0 {
            *v = 1;
        }
        if (x - 100.0).abs() < 40.0 && (y + 90.0).abs() < 30.0 {
            *v = 2;
        }
    }
    let mut p = g.clone();
    p.rotate_left(n * 3 + 2);
    let vol = |d: Data, n: usize| {
        let mut v = Volume::new(vec![n, n, n], d);
        v.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
        v
    };
    nifti::write(&dir.join("p.nii.gz"), &vol(Data::U8(p), n)).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &vol(Data::U8(g), n)).unwrap();
    let peak = peak_of(&run(
        eval(&dir.join("p.nii.gz"), &dir.join("g.nii.gz")).arg("--peak-memory")
    ));
    let volumes = 2 * (n * n * n) as u64;
    eprintln!(
        "512^3 u8 pair: peak memory {:.1} MiB for {:.1} MiB of volumes ({:.3}x)",
        peak as f64 / 1048576.0,
        volumes as f64 / 1048576.0,
        peak as f64 / volumes as f64
    );
    assert!(
        (peak as f64) < 1.2 * volumes as f64,
        "peak {peak} bytes for {volumes} bytes of volumes"
    );
    // 256³ float32 probabilities against uint8 labels.
    let m = 256usize;
    let probs: Vec<f32> = (0..m * m * m)
        .map(|i| ((i * 2654435761usize) >> 7 & 1023) as f32 / 1023.0)
        .collect();
    let labels: Vec<u8> = (0..m * m * m).map(|i| u8::from(i % 7 < 3)).collect();
    nifti::write(&dir.join("prob.nii.gz"), &vol(Data::F32(probs), m)).unwrap();
    nifti::write(&dir.join("lab.nii.gz"), &vol(Data::U8(labels), m)).unwrap();
    let peak = peak_of(&run(eval(
        &dir.join("prob.nii.gz"),
        &dir.join("lab.nii.gz"),
    )
    .arg("--peak-memory")));
    let inputs = (m * m * m * 5) as u64;
    eprintln!("256^3 f32 probabilities vs u8 labels: peak memory {:.1} MiB for {:.1} MiB of inputs ({:.3}x)", peak as f64 / 1048576.0, inputs as f64 / 1048576.0, peak as f64 / inputs as f64);
    assert!(
        (peak as f64) < 1.2 * inputs as f64,
        "peak {peak} bytes for {inputs} bytes of inputs"
    );
}

/// Surface metrics through `dice eval`: the core's values for each label, the options, and the
/// errors that say what is missing.
#[test]
fn surface_metrics_from_the_command_line() {
    use dice_core::surface::{self as surf, Grid, PercentileDefinition, Surfaces};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let (p, g) = (dir.join("pred.nii.gz"), dir.join("gt.nii.gz"));
    let j = json(&ok(eval(&p, &g).args([
        "--metrics",
        "dice,hd,hd95,assd,masd,nsd",
        "--tolerance",
        "1:2,2:1,3:0.5",
        "--hd-definition",
        "pooled",
        "--percentile",
        "90",
        "--format",
        "json",
    ])));
    let (pred, gt) = dice_cli::sample::pair();
    let (Data::U8(pv), Data::U8(gv)) = (&pred.data, &gt.data) else {
        unreachable!()
    };
    let grid = Grid::new([40, 40, 24], [1.0, 1.0, 2.0]).unwrap();
    for (k, (label, tol)) in [(1u8, 2.0), (2, 1.0), (3, 0.5)].into_iter().enumerate() {
        let pm: Vec<u8> = pv.iter().map(|&v| u8::from(v == label)).collect();
        let gm: Vec<u8> = gv.iter().map(|&v| u8::from(v == label)).collect();
        let mut s = vec![0.0; surf::scratch_len(grid, &pm, &gm).unwrap()];
        let Surfaces::Distances(d) =
            surf::surface_distances(grid, &pm, &gm, 90.0, tol, &mut s).unwrap()
        else {
            panic!()
        };
        let row = &j["cases"][0]["labels"][k];
        assert_eq!(row["label"], label as i64);
        assert_eq!(row["hd"].as_f64(), Some(d.hausdorff()));
        assert_eq!(
            row["hd90"].as_f64(),
            Some(d.percentile_hausdorff(PercentileDefinition::Pooled))
        );
        assert_eq!(row["assd"].as_f64(), Some(d.assd()));
        assert_eq!(row["masd"].as_f64(), Some(d.masd()));
        assert_eq!(row["nsd"].as_f64(), Some(d.nsd()));
        assert!(row.get("iou").is_none(), "only the metrics asked for");
    }
    // Surfels with areas (DeepMind's definition) on request.
    let j = json(&ok(eval(&p, &g).args([
        "--metrics",
        "hd95,assd,nsd",
        "--tolerance",
        "1",
        "--surface",
        "surfel",
        "--format",
        "json",
    ])));
    let lab1 = |v: &u8| u8::from(*v == 1);
    let (pm, gm): (Vec<u8>, Vec<u8>) =
        (pv.iter().map(lab1).collect(), gv.iter().map(lab1).collect());
    let (pf, gf) = (|i: usize| pm[i] != 0, |i: usize| gm[i] != 0);
    let b = surf::bounding_box(grid, &pm, &gm);
    let el = surf::Elements::Surfels;
    let mut s = vec![0.0; surf::scratch_len_for(el, grid, b, &pf, &gf)];
    let Surfaces::Distances(d) =
        surf::distances_for(el, grid, b, &pf, &gf, 95.0, 1.0, &mut s).unwrap()
    else {
        panic!()
    };
    let row = &j["cases"][0]["labels"][0];
    assert_eq!(
        row["hd95"].as_f64(),
        Some(d.percentile_hausdorff(PercentileDefinition::MaxDirected))
    );
    assert_eq!(row["assd"].as_f64(), Some(d.assd()));
    assert_eq!(row["nsd"].as_f64(), Some(d.nsd()));
    // What is missing is said before anything is decoded (usage errors), or names the file.
    let e = status(eval(&p, &g).args(["--metrics", "nsd"]), 2);
    assert!(e.contains("--tolerance"), "{e}");
    status(
        eval(&p, &g).args(["--metrics", "hd", "--percentile", "101"]),
        2,
    );
    status(eval(&p, &g).args(["--metrics", "area"]), 2);
    status(
        eval(&p, &g).args(["--metrics", "hd", "--empty-distance", "far"]),
        2,
    );
    let tmpd = tmp("surface-npy");
    let m: Vec<u8> = (0..64).map(|i| u8::from(i % 8 < 4 && i / 8 < 5)).collect();
    npy::write(&tmpd.join("m.npy"), &vol2(8, 8, Data::U8(m))).unwrap();
    let e = fails(eval(&tmpd.join("m.npy"), &tmpd.join("m.npy")).args(["--metrics", "hd"]));
    assert!(e.contains("--spacing"), "{e}");
    let j = json(&ok(eval(&tmpd.join("m.npy"), &tmpd.join("m.npy")).args([
        "--metrics",
        "hd,nsd",
        "--spacing",
        "0.5,2",
        "--tolerance",
        "0",
        "--format",
        "json",
    ])));
    assert_eq!(j["cases"][0]["labels"][0]["hd"], 0.0);
    assert_eq!(j["cases"][0]["labels"][0]["nsd"], 1.0);
    // A label missing from the prediction: the image diagonal by default, a penalty on request.
    let mut one = vec![0u8; 64];
    one[9] = 1;
    npy::write(&tmpd.join("one.npy"), &vol2(8, 8, Data::U8(one))).unwrap();
    let zero = vec![0u8; 64];
    npy::write(&tmpd.join("zero.npy"), &vol2(8, 8, Data::U8(zero))).unwrap();
    let j = json(&ok(eval(&tmpd.join("zero.npy"), &tmpd.join("one.npy"))
        .args([
            "--metrics",
            "hd,nsd",
            "--spacing",
            "1,1",
            "--tolerance",
            "1",
            "--format",
            "json",
        ])));
    assert_eq!(
        j["cases"][0]["labels"][0]["hd"].as_f64(),
        Some((49.0f64 * 2.0).sqrt())
    );
    assert_eq!(j["cases"][0]["labels"][0]["nsd"], 0.0);
    let j = json(&ok(eval(&tmpd.join("zero.npy"), &tmpd.join("one.npy"))
        .args([
            "--metrics",
            "hd",
            "--spacing",
            "1,1",
            "--empty-distance",
            "373.13",
            "--format",
            "json",
        ])));
    assert_eq!(j["cases"][0]["labels"][0]["hd"], 373.13);
}

#[path = "../../dice-core/tests/golden/lesions_fixtures.rs"]
mod lesion_fixtures;

/// The first `count` BraTS-like cases of dice-core's lesion fixtures as NumPy files in two new
/// directories (prediction, reference), named by `name`.
fn write_lesion_cases(
    tag: &str,
    count: usize,
    name: impl Fn(usize) -> String,
) -> (PathBuf, PathBuf) {
    use lesion_fixtures as fx;
    let (pd, gd) = (tmp(&format!("{tag}-pred")), tmp(&format!("{tag}-gt")));
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::create_dir_all(&gd).unwrap();
    let dims = vec![fx::NX[0], fx::NY[0], fx::NZ[0]];
    let vol = |rle: &[u32]| -> Vec<u8> {
        rle.chunks(2)
            .flat_map(|c| std::iter::repeat_n(c[0] as u8, c[1] as usize))
            .collect()
    };
    let all = [
        (&fx::PRED_0[..], &fx::GT_0[..]),
        (&fx::PRED_1[..], &fx::GT_1[..]),
        (&fx::PRED_2[..], &fx::GT_2[..]),
    ];
    for (k, (p, g)) in all.into_iter().take(count).enumerate() {
        npy::write(
            &pd.join(name(k)),
            &Volume::new(dims.clone(), Data::U8(vol(p))),
        )
        .unwrap();
        npy::write(
            &gd.join(name(k)),
            &Volume::new(dims.clone(), Data::U8(vol(g))),
        )
        .unwrap();
    }
    (pd, gd)
}

/// `--region` and `--lesion-wise` give the official BraTS 2023 numbers (the fixtures of
/// dice-core's lesion tests, written here as NumPy files with the same float32 spacing), IoU
/// matching gives panoptica's, directory runs summarize and pool them, `--format nnunet` writes
/// nnU-Net's layout, and the bootstrap interval depends on its seed only.
#[test]
fn regions_and_lesion_wise_metrics_from_the_command_line() {
    use lesion_fixtures as fx;
    let (pd, gd) = write_lesion_cases("lesion", 3, |k| format!("case{k}.npy"));
    let spacing: Vec<String> = fx::SPACING
        .iter()
        .map(|v| format!("{}", *v as f32 as f64))
        .collect();
    let spacing = spacing.join(",");
    let regions = [
        "--region", "WT=1,2,3", "--region", "TC=1,3", "--region", "ET=3",
    ];
    let golden = [
        [
            &fx::BRATS_GLI_0_WT,
            &fx::BRATS_GLI_0_TC,
            &fx::BRATS_GLI_0_ET,
        ],
        [
            &fx::BRATS_GLI_1_WT,
            &fx::BRATS_GLI_1_TC,
            &fx::BRATS_GLI_1_ET,
        ],
        [
            &fx::BRATS_GLI_2_WT,
            &fx::BRATS_GLI_2_TC,
            &fx::BRATS_GLI_2_ET,
        ],
    ];
    let j = json(&ok(eval(&pd, &gd).args(regions).args([
        "--lesion-wise",
        "--spacing",
        &spacing,
        "--format",
        "json",
        "--ci",
        "0.9",
    ])));
    for (k, case) in j["cases"].as_array().unwrap().iter().enumerate() {
        for (r, name) in ["WT", "TC", "ET"].iter().enumerate() {
            let row = case["labels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["label"] == *name)
                .unwrap();
            let want = golden[k][r];
            let got = [
                row["lesion_tp"].as_f64().unwrap(),
                row["lesion_fp"].as_f64().unwrap(),
                row["lesion_fn"].as_f64().unwrap(),
                row["lesion_dice"].as_f64().unwrap(),
                row["lesion_hd95"].as_f64().unwrap(),
                row["dice"].as_f64().unwrap(),
            ];
            for (a, b) in got.iter().zip(want.iter()) {
                assert!(
                    (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "case {k} {name}: {got:?} vs {want:?}"
                );
            }
            // Volumes in mL beside the voxel counts.
            let ml = row["ref_voxels"].as_f64().unwrap() * 1.0 * (1.2f32 as f64) * (0.9f32 as f64)
                / 1000.0;
            assert!((row["ref_ml"].as_f64().unwrap() - ml).abs() < 1e-12);
        }
    }
    // Summary: WT lesion-wise Dice over the three cases, a 90% interval around it, pooled Dice.
    let s = j["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "WT" && s["metric"] == "lesion_dice")
        .unwrap();
    let mean = golden.iter().map(|g| g[0][3]).sum::<f64>() / 3.0;
    assert!((s["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    let ci = s["ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= mean && mean <= ci[1].as_f64().unwrap());
    assert!(j["pooled"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["label"] == "ET"));
    // The same seed gives the same interval; a lower level a narrower one.
    let again = json(&ok(eval(&pd, &gd).args(regions).args([
        "--lesion-wise",
        "--spacing",
        &spacing,
        "--format",
        "json",
        "--ci",
        "0.9",
    ])));
    assert!(
        again["summary"] == j["summary"],
        "the bootstrap is not reproducible"
    );
    let half = json(&ok(eval(&pd, &gd).args(regions).args([
        "--spacing",
        &spacing,
        "--format",
        "json",
        "--ci",
        "0.5",
    ])));
    let width = |v: &serde_json::Value| {
        let c = v["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == "WT" && s["metric"] == "dice")
            .unwrap()["ci"]
            .clone();
        c[1].as_f64().unwrap() - c[0].as_f64().unwrap()
    };
    assert!(width(&half) <= width(&j));
    // IoU matching: panoptica's counts and panoptic quality of the whole tumour.
    let j = json(&ok(eval(&pd.join("case0.npy"), &gd.join("case0.npy"))
        .args(regions)
        .args([
            "--lesion-wise",
            "--match",
            "iou",
            "--spacing",
            &spacing,
            "--format",
            "json",
        ])));
    let wt = j["cases"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "WT")
        .unwrap();
    let want = fx::PANOPTICA_0;
    assert_eq!(wt["lesion_tp"].as_f64().unwrap(), want[0]);
    assert_eq!(wt["lesion_fp"].as_f64().unwrap(), want[1]);
    assert!((wt["pq"].as_f64().unwrap() - want[3]).abs() < 1e-12);
    // nnU-Net's summary.json layout.
    let n = json(&ok(
        eval(&pd, &gd).args(["--region", "WT=1,2,3", "--format", "nnunet"])
    ));
    assert!(n["foreground_mean"]["Dice"].is_f64());
    assert!(n["mean"]["(1, 2, 3)"]["Dice"].is_f64());
    assert_eq!(n["metric_per_case"].as_array().unwrap().len(), 3);
    assert!(n["metric_per_case"][0]["metrics"]["1"]["TP"].is_u64());
    // Usage errors, before any file is read.
    status(eval(&pd, &gd).args(["--region", "1=1,2"]), 2);
    status(eval(&pd, &gd).args(["--brats", "met"]), 2);
    status(
        eval(&pd, &gd).args(["--lesion-wise", "--match", "iou", "--iou-threshold", "0.3"]),
        2,
    );
    status(eval(&pd, &gd).args(["--ci", "1.5"]), 2);
}

/// `--report`: one self-contained HTML page (no network, no script) that headless Chromium
/// renders into a picture that is not blank, whose DOM holds the summary means and pooled Dice
/// of the JSON output, with the worst cases' overlays embedded. Without Chromium the test says
/// it was skipped, unless DICE_REQUIRE_CHROMIUM=1 (the README's test command installs it).
#[test]
fn html_report_renders_in_headless_chromium() {
    let (pd, gd) = write_lesion_cases("report", 2, |k| format!("case {k}<&>.npy"));
    let out = tmp("report-out");
    std::fs::create_dir_all(&out).unwrap();
    let page = out.join("report.html");
    let args = [
        "--region",
        "WT=1,2,3",
        "--lesion-wise",
        "--spacing",
        "1,1,1",
        "--ci",
        "0.9",
    ];
    let j = json(&ok(eval(&pd, &gd)
        .args(args)
        .args(["--format", "json", "--report"])
        .arg(&page)));
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing fetched: no script, no stylesheet link, no remote source (the SVG namespace URI
    // is a name, not a request).
    for bad in [
        "<script",
        "<link",
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
    ] {
        assert!(!html.contains(bad), "the report holds {bad}");
    }
    assert!(
        html.contains("data:image/png;base64,"),
        "the worst cases' overlays are embedded"
    );
    assert!(html.contains("case 0&lt;&amp;&gt;"), "names are escaped");
    // A report must be an .html file, checked before anything is read.
    status(eval(&pd, &gd).args(["--report", "r.txt"]), 2);
    let Some(chromium) = std::env::var_os("DICE_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["chromium", "chromium-browser"].iter().find_map(|c| {
                Command::new(c)
                    .arg("--version")
                    .output()
                    .ok()
                    .map(|_| PathBuf::from(c))
            })
        })
    else {
        assert!(
            std::env::var("DICE_REQUIRE_CHROMIUM").is_err(),
            "DICE_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        println!("SKIPPED html_report_renders_in_headless_chromium: no chromium");
        return;
    };
    let url = format!("file://{}", page.display());
    let headless = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
    ];
    let dom = Command::new(&chromium)
        .args(headless)
        .arg("--dump-dom")
        .arg(&url)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    for s in j["summary"].as_array().unwrap() {
        if let Some(m) = s["mean"].as_f64() {
            assert!(
                dom.contains(&format!("data-value=\"{m}\"")),
                "summary mean {m} in the DOM"
            );
        }
    }
    for p in j["pooled"].as_array().unwrap() {
        let d = p["dice"].as_f64().unwrap();
        assert!(
            dom.contains(&format!("data-value=\"{d}\"")),
            "pooled Dice {d} in the DOM"
        );
    }
    let shot = out.join("shot.png");
    let st = Command::new(&chromium)
        .args(headless)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,1400")
        .arg(&url)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut px = vec![0u8; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut px).unwrap();
    // Not blank: many distinct grey levels (text, tables, plots), not one colour.
    let mut seen = [false; 256];
    for &v in px.iter() {
        seen[v as usize] = true;
    }
    let distinct = seen.iter().filter(|&&b| b).count();
    assert!(
        distinct > 32,
        "the screenshot has only {distinct} distinct values"
    );
}
