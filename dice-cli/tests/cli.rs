//! The `dice` binary on files written in each format, directories, pictures, and the error
//! cases; results checked against dice-core computed directly on the same data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dice_cli::formats::{nifti, npy, png as pngf, tiff as tiff_f};
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

fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The Dice column of `--format csv` output by label.
fn csv_dice(text: &str) -> Vec<(i64, f64)> {
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap_or(f64::NAN))
        })
        .collect()
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
    let text = ok(dice()
        .arg("eval")
        .arg(dir.join("pred.nii.gz"))
        .arg(dir.join("gt.nii.gz"))
        .args(["--format", "csv"]));
    let (Data::U8(p), Data::U8(g)) = (&pred.data, &gt.data) else {
        unreachable!()
    };
    let want = expected(p, g, 4);
    let got = csv_dice(&text);
    assert_eq!(got.len(), 3);
    for (label, d) in got {
        assert_eq!(
            Some(d),
            want[label as usize]
                .dice(EmptyPolicy::DEFAULT)
                .map(|v| (v * 1e6).round() / 1e6)
        );
    }
}

#[test]
fn every_format_gives_the_same_counts() {
    let dir = tmp("formats");
    let (h, w) = (32, 40);
    let (p, g) = (labels_2d(h, w, 1), labels_2d(h, w, 0));
    let want = expected(&p, &g, 3);
    let vol = |d: Vec<u8>, fastest_first: bool| {
        let shape = if fastest_first {
            vec![w, h]
        } else {
            vec![h, w]
        };
        Volume {
            shape,
            spacing: None,
            data: Data::U8(d),
            fastest_first,
        }
    };
    nifti::write(&dir.join("p.nii"), &vol(p.clone(), true)).unwrap();
    nifti::write(&dir.join("g.nii"), &vol(g.clone(), true)).unwrap();
    nifti::write(&dir.join("p.nii.gz"), &vol(p.clone(), true)).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &vol(g.clone(), true)).unwrap();
    npy::write(&dir.join("p.npy"), &vol(p.clone(), false)).unwrap();
    npy::write(&dir.join("g.npy"), &vol(g.clone(), false)).unwrap();
    pngf::write_gray(&dir.join("p.png"), w, h, &p).unwrap();
    pngf::write_gray(&dir.join("g.png"), w, h, &g).unwrap();
    tiff_f::write(&dir.join("p.tif"), &vol(p.clone(), false)).unwrap();
    tiff_f::write(&dir.join("g.tiff"), &vol(g.clone(), false)).unwrap();
    let u16v = |d: &[u8]| Volume {
        shape: vec![h, w],
        spacing: None,
        data: Data::U16(d.iter().map(|&x| x as u16).collect()),
        fastest_first: false,
    };
    npy::write(&dir.join("p16.npy"), &u16v(&p)).unwrap();
    tiff_f::write(&dir.join("g16.tif"), &u16v(&g)).unwrap();
    let i64v = Volume {
        shape: vec![h, w],
        spacing: None,
        data: Data::I64(g.iter().map(|&x| x as i64).collect()),
        fastest_first: false,
    };
    npy::write(&dir.join("g64.npy"), &i64v).unwrap();
    for (a, b) in [
        ("p.nii", "g.nii"),
        ("p.nii.gz", "g.nii.gz"),
        ("p.npy", "g.npy"),
        ("p.png", "g.png"),
        ("p.tif", "g.tiff"),
        ("p.npy", "g.png"),
        ("p16.npy", "g16.tif"),
        ("p.png", "g64.npy"),
    ] {
        let text = ok(dice()
            .arg("eval")
            .arg(dir.join(a))
            .arg(dir.join(b))
            .args(["--format", "csv"]));
        let got = csv_dice(&text);
        assert_eq!(got.len(), 2, "{a} vs {b}: {text}");
        for (label, d) in got {
            let w = want[label as usize].dice(EmptyPolicy::DEFAULT).unwrap();
            assert!((d - w).abs() < 1e-6, "{a} vs {b} label {label}: {d} vs {w}");
        }
    }
}

#[test]
fn probability_maps_threshold_and_soft_dice() {
    let dir = tmp("prob");
    let n = 500;
    let p: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let g: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 0)).collect();
    npy::write(
        &dir.join("p.npy"),
        &Volume {
            shape: vec![n],
            spacing: None,
            data: Data::F32(p.clone()),
            fastest_first: false,
        },
    )
    .unwrap();
    npy::write(
        &dir.join("g.npy"),
        &Volume {
            shape: vec![n],
            spacing: None,
            data: Data::U8(g.clone()),
            fastest_first: false,
        },
    )
    .unwrap();
    let text = ok(dice()
        .arg("eval")
        .arg(dir.join("p.npy"))
        .arg(dir.join("g.npy"))
        .args([
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
    let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
    let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    let c = hard::confusion_from_probabilities(&p64, &g64, 0.3).unwrap();
    let s = dice_core::SoftStats::of(&p64, &g64, dice_core::Moment::Linear).unwrap();
    let soft = dice_core::score::dice(s.intersection, s.pred, s.target, 1.0, 1.0).unwrap();
    assert!(
        text.contains(&format!(
            "\"dice\": {}",
            c.dice(EmptyPolicy::DEFAULT).unwrap()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("\"soft_dice\": {soft}")), "{text}");
    assert!(text.contains(&format!("\"tp\": {}", c.tp)));
    // Logits saved as probabilities are an error naming the voxel.
    let bad: Vec<f32> = p.iter().map(|&v| v * 4.0 - 2.0).collect();
    npy::write(
        &dir.join("logits.npy"),
        &Volume {
            shape: vec![n],
            spacing: None,
            data: Data::F32(bad),
            fastest_first: false,
        },
    )
    .unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("logits.npy"))
            .arg(dir.join("g.npy")),
    );
    assert!(e.contains("outside [0, 1]") && e.contains("index"), "{e}");
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("g.npy"))
            .arg(dir.join("g.npy"))
            .arg("--soft"),
    );
    assert!(e.contains("--soft needs a probability map"), "{e}");
}

#[test]
fn label_selection_ignore_and_empty_policies() {
    let dir = tmp("labels");
    let pred: Vec<u8> = vec![1, 1, 0, 2, 3, 3, 0, 0, 9];
    let gt: Vec<u8> = vec![1, 0, 0, 2, 0, 0, 255, 255, 255];
    let v = |d: Vec<u8>| Volume {
        shape: vec![9],
        spacing: None,
        data: Data::U8(d),
        fastest_first: false,
    };
    npy::write(&dir.join("p.npy"), &v(pred)).unwrap();
    npy::write(&dir.join("g.npy"), &v(gt)).unwrap();
    let csv = |args: &[&str]| {
        ok(dice()
            .arg("eval")
            .arg(dir.join("p.npy"))
            .arg(dir.join("g.npy"))
            .args(["--format", "csv"])
            .args(args))
    };
    // Label 9 only appears where the reference is ignored.
    let text = csv(&["--ignore-label", "255"]);
    let got = csv_dice(&text);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "{text}"
    );
    assert_eq!(
        got[2].1, 0.0,
        "false positives on an empty reference score 0 by default"
    );
    let text = csv(&[
        "--ignore-label",
        "255",
        "--empty-reference",
        "nan",
        "--labels",
        "3,4",
        "--empty",
        "one",
    ]);
    let got = csv_dice(&text);
    assert!(got[0].1.is_nan(), "{text}");
    assert_eq!(got[1].1, 1.0);
    let text = csv(&["--ignore-label", "255", "--labels", "4"]);
    assert_eq!(
        text.lines().nth(1).unwrap().split(',').nth(2).unwrap(),
        "",
        "skipped by default: {text}"
    );
    assert!(csv(&["--ignore-label", "255", "--include-background"])
        .lines()
        .nth(1)
        .unwrap()
        .starts_with(&format!("{},0,", dir.join("p.npy").display())));
    // Without the ignore label, 255 and 9 are just labels.
    assert_eq!(csv_dice(&csv(&[])).len(), 5);
}

#[test]
fn errors_name_the_files() {
    let dir = tmp("errors");
    let a = Volume {
        shape: vec![4, 5, 6],
        spacing: Some(vec![1.0, 1.0, 2.0]),
        data: Data::U8(vec![1; 120]),
        fastest_first: true,
    };
    let mut b = a.clone();
    b.spacing = Some(vec![1.0, 1.0, 2.5]);
    let mut c = a.clone();
    c.shape = vec![6, 5, 4];
    nifti::write(&dir.join("a.nii.gz"), &a).unwrap();
    nifti::write(&dir.join("b.nii.gz"), &b).unwrap();
    nifti::write(&dir.join("c.nii"), &c).unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("a.nii.gz"))
            .arg(dir.join("b.nii.gz")),
    );
    assert!(
        e.contains("spacing differs") && e.contains("a.nii.gz") && e.contains("b.nii.gz"),
        "{e}"
    );
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("a.nii.gz"))
            .arg(dir.join("c.nii")),
    );
    assert!(
        e.contains("shapes differ") && e.contains("a.nii.gz") && e.contains("c.nii"),
        "{e}"
    );
    // Truncated and corrupt files.
    let full = std::fs::read(dir.join("c.nii")).unwrap();
    std::fs::write(dir.join("short.nii"), &full[..full.len() - 10]).unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("short.nii"))
            .arg(dir.join("c.nii")),
    );
    assert!(e.contains("short.nii") && e.contains("truncated"), "{e}");
    let gz = std::fs::read(dir.join("a.nii.gz")).unwrap();
    std::fs::write(dir.join("cut.nii.gz"), &gz[..gz.len() / 2]).unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("cut.nii.gz"))
            .arg(dir.join("a.nii.gz")),
    );
    assert!(e.contains("cut.nii.gz"), "{e}");
    let mut bad = gz.clone();
    for b in bad.iter_mut().skip(20).take(20) {
        *b ^= 0x5A;
    }
    std::fs::write(dir.join("bad.nii.gz"), &bad).unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("bad.nii.gz"))
            .arg(dir.join("a.nii.gz")),
    );
    assert!(e.contains("bad.nii.gz"), "{e}");
    std::fs::write(
        dir.join("junk.npy"),
        b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}",
    )
    .unwrap();
    assert!(fails(
        dice()
            .arg("eval")
            .arg(dir.join("junk.npy"))
            .arg(dir.join("junk.npy"))
    )
    .contains("junk.npy"));
    std::fs::write(dir.join("junk.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    assert!(fails(
        dice()
            .arg("eval")
            .arg(dir.join("junk.png"))
            .arg(dir.join("junk.png"))
    )
    .contains("junk.png"));
    std::fs::write(dir.join("junk.tif"), b"II*\x00\x08\x00\x00\x00garbage").unwrap();
    assert!(fails(
        dice()
            .arg("eval")
            .arg(dir.join("junk.tif"))
            .arg(dir.join("junk.tif"))
    )
    .contains("junk.tif"));
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("x.txt"))
            .arg(dir.join("a.nii.gz")),
    );
    assert!(e.contains("unknown file type"), "{e}");
    // A header claiming an absurd size is refused before allocating.
    let mut huge = full.clone();
    huge[42..48].copy_from_slice(&[0xff, 0x7f, 0xff, 0x7f, 0xff, 0x7f]);
    huge[40..42].copy_from_slice(&3i16.to_le_bytes());
    std::fs::write(dir.join("huge.nii"), &huge).unwrap();
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("huge.nii"))
            .arg(dir.join("c.nii")),
    );
    assert!(e.contains("huge.nii"), "{e}");
    // Usage errors exit with 2.
    assert_eq!(
        run(dice().arg("eval").arg("only-one")).status.code(),
        Some(2)
    );
}

#[test]
fn big_endian_nifti_and_fortran_npy() {
    let dir = tmp("endian");
    // A big-endian int16 NIfTI written by hand.
    let (nx, ny) = (3usize, 2usize);
    let vals: [i16; 6] = [0, 1, 2, 1, 0, 2];
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_be_bytes());
    h[40..42].copy_from_slice(&2i16.to_be_bytes());
    h[42..44].copy_from_slice(&(nx as i16).to_be_bytes());
    h[44..46].copy_from_slice(&(ny as i16).to_be_bytes());
    h[70..72].copy_from_slice(&4i16.to_be_bytes());
    h[72..74].copy_from_slice(&16i16.to_be_bytes());
    for k in 0..3 {
        h[76 + 4 * k..80 + 4 * k].copy_from_slice(&1f32.to_be_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_be_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    for v in vals {
        h.extend_from_slice(&v.to_be_bytes());
    }
    std::fs::write(dir.join("be.nii"), &h).unwrap();
    let v = nifti::read(&dir.join("be.nii")).unwrap();
    assert_eq!(v.shape, [3, 2]);
    assert_eq!(v.data, Data::I32(vals.iter().map(|&x| x as i32).collect()));
    let text = ok(dice()
        .arg("eval")
        .arg(dir.join("be.nii"))
        .arg(dir.join("be.nii"))
        .args(["--format", "csv"]));
    assert_eq!(csv_dice(&text), [(1, 1.0), (2, 1.0)]);
    std::fs::write(dir.join("f.npy"), b"\x93NUMPY\x01\x00\x46\x00{'descr': '<u1', 'fortran_order': True, 'shape': (2, 2), }            \n\x00\x01\x01\x00").unwrap();
    assert!(fails(
        dice()
            .arg("eval")
            .arg(dir.join("f.npy"))
            .arg(dir.join("f.npy"))
    )
    .contains("Fortran"));
}

#[test]
fn directories_pair_by_name_and_do_not_depend_on_threads() {
    let pd = tmp("dir-pred");
    let gd = tmp("dir-gt");
    for k in 0..7 {
        let (p, g) = (labels_2d(32, 40, k % 3 + 1), labels_2d(32, 40, 0));
        pngf::write_gray(&pd.join(format!("case{k:02}.png")), 40, 32, &p).unwrap();
        npy::write(
            &gd.join(format!("case{k:02}.npy")),
            &Volume {
                shape: vec![32, 40],
                spacing: None,
                data: Data::U8(g),
                fastest_first: false,
            },
        )
        .unwrap();
    }
    pngf::write_gray(&pd.join("extra.png"), 40, 32, &labels_2d(32, 40, 0)).unwrap();
    pngf::write_gray(&gd.join("lonely.png"), 40, 32, &labels_2d(32, 40, 0)).unwrap();
    let json = |threads: &str| {
        ok(dice()
            .arg("eval")
            .arg(&pd)
            .arg(&gd)
            .args(["--format", "json", "--threads", threads]))
    };
    let one = json("1");
    assert_eq!(one, json("2"));
    assert_eq!(one, json("5"));
    assert!(
        one.contains("\"only_prediction\": [\"extra\"]")
            && one.contains("\"only_reference\": [\"lonely\"]"),
        "{one}"
    );
    assert!(one.contains("\"metric\": \"dice\"") && one.contains("\"defined\": 7"));
    let table = ok(dice().arg("eval").arg(&pd).arg(&gd));
    assert!(
        table.contains("summary over cases")
            && table.contains("median")
            && table.contains("only a prediction, no reference: extra")
    );
    // The summary's mean is the mean of the cases' values.
    let per_case: Vec<f64> = ok(dice()
        .arg("eval")
        .arg(&pd)
        .arg(&gd)
        .args(["--format", "csv"]))
    .lines()
    .skip(1)
    .filter(|l| l.split(',').nth(1) == Some("1"))
    .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
    .collect();
    assert_eq!(per_case.len(), 7);
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
    assert_eq!(
        text.lines().filter(|l| l.starts_with("case")).count(),
        6 * 2 + 1 + 1
    );
}

#[test]
fn overlay_and_output_file() {
    let dir = tmp("overlay");
    let (pred, gt) = dice_cli::sample::pair();
    nifti::write(&dir.join("p.nii.gz"), &pred).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &gt).unwrap();
    let out = run(dice()
        .arg("eval")
        .arg(dir.join("p.nii.gz"))
        .arg(dir.join("g.nii.gz"))
        .args(["--overlay"])
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
    let e = fails(
        dice()
            .arg("eval")
            .arg(dir.join("p.nii.gz"))
            .arg(dir.join("g.nii.gz"))
            .arg("--overlay")
            .arg(dir.join("x.png"))
            .args(["--slice", "99"]),
    );
    assert!(e.contains("slice 99"), "{e}");
}

/// A 512³ u8 pair is evaluated with memory near the two volumes' size (2 × 128 MiB).
#[test]
fn memory_of_a_512_cubed_pair() {
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
    let vol = |d| Volume {
        shape: vec![n, n, n],
        spacing: Some(vec![1.0; 3]),
        data: Data::U8(d),
        fastest_first: true,
    };
    nifti::write(&dir.join("p.nii.gz"), &vol(p)).unwrap();
    nifti::write(&dir.join("g.nii.gz"), &vol(g)).unwrap();
    let out = run(dice()
        .arg("eval")
        .arg(dir.join("p.nii.gz"))
        .arg(dir.join("g.nii.gz"))
        .arg("--peak-memory"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    let peak: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .unwrap()
        .trim_end_matches(" bytes")
        .parse()
        .unwrap();
    let volumes = 2 * (n * n * n) as u64;
    eprintln!(
        "512^3 pair: peak memory {:.1} MiB for {:.1} MiB of volumes",
        peak as f64 / 1048576.0,
        volumes as f64 / 1048576.0
    );
    assert!(
        peak < volumes + 64 * 1024 * 1024,
        "peak {peak} bytes for {volumes} bytes of volumes"
    );
}
