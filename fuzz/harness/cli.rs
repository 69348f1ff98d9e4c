//! Harnesses of `dice eval`'s readers and pair evaluation, shared by the libFuzzer targets
//! (`fuzz/fuzz_targets`) and the stable regression test (`tests/fuzz_regressions.rs`): any
//! bytes in, a result or an error out, never a panic, an abort or unbounded memory.

// Each fuzz target uses one of these functions; the stable replay uses them all.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dice_cli::eval::{self, MetricName, Options};
use dice_cli::report::{Case, Format, Report};
use dice_cli::semantics::{interpret_volume, Kind};
use dice_cli::surfaces::{SurfaceOptions, Tolerance};
use dice_cli::{formats, overlay};

/// The extensions the fuzzers write their bytes under (one reader each).
pub const EXTENSIONS: [&str; 9] = [
    ".nii", ".nii.gz", ".hdr", ".nrrd", ".mha", ".npy", ".png", ".tif", ".mhd",
];

/// A scratch directory of this process (and thread).
pub fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "dice-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).expect("a scratch directory");
    d
}

/// Writes `data` as `name` + `ext` in `dir`; a `.hdr` gets its first 352 bytes and the rest
/// becomes the `.img`, a `.mhd` its text up to a NUL byte and the rest a `.raw` it can name.
pub fn write_as(dir: &Path, name: &str, ext: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(format!("{name}{ext}"));
    let (head, tail) = match ext {
        ".hdr" => data.split_at(data.len().min(352)),
        ".mhd" => match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &data[..0]),
        },
        _ => (data, &data[..0]),
    };
    std::fs::write(&path, head).expect("write");
    match ext {
        ".hdr" => std::fs::write(dir.join(format!("{name}.img")), tail).expect("write"),
        ".mhd" => std::fs::write(dir.join(format!("{name}.raw")), tail).expect("write"),
        _ => {}
    }
    path
}

/// Reads `data` as a file with extension `ext`, then interprets it every way.
pub fn read_as(ext: &str, data: &[u8]) {
    let dir = scratch();
    let path = write_as(&dir, "f", ext, data);
    if let Ok(v) = formats::read(&path) {
        assert_eq!(
            v.data.len(),
            v.voxels(),
            "a decoded volume holds what its size says"
        );
        for kind in [Kind::Auto, Kind::Labels, Kind::Probabilities] {
            let _ = interpret_volume(v.clone(), kind, kind == Kind::Auto);
        }
    } else if let Err(e) = formats::read(&path) {
        assert!(e.contains("f."), "errors name the file: {e}");
    }
}

/// One input for every reader: the first byte picks the extension.
pub fn read_any(data: &[u8]) {
    if let Some((&k, rest)) = data.split_first() {
        read_as(EXTENSIONS[k as usize % EXTENSIONS.len()], rest);
    }
}

/// A pair and options from bytes: 8 control bytes, then the two files' bytes.
pub fn eval_pair(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let (c, rest) = data.split_at(8);
    let dir = scratch();
    let cut = (u16::from_le_bytes([c[2], c[3]]) as usize) % (rest.len() + 1);
    let (pb, gb) = rest.split_at(cut);
    let p = write_as(&dir, "p", EXTENSIONS[c[0] as usize % EXTENSIONS.len()], pb);
    let g = write_as(&dir, "g", EXTENSIONS[c[1] as usize % EXTENSIONS.len()], gb);
    let kinds = [Kind::Auto, Kind::Labels, Kind::Probabilities];
    let opts = Options {
        threshold: c[4] as f64 / 255.0,
        ignore_label: (c[5] & 1 == 1).then_some((c[5] >> 1) as i64),
        labels: (c[6] & 1 == 1).then(|| vec![(c[6] >> 1) as i64, 1 << (c[6] >> 2)]),
        include_background: c[7] & 1 != 0,
        soft: (c[7] & 2 != 0).then_some((1.0, 0.5)),
        ignore_geometry: c[7] & 4 != 0,
        pred_as: kinds[(c[7] >> 3) as usize % 3],
        ref_as: kinds[(c[7] >> 5) as usize % 3],
        max_labels: 64,
        metrics: if c[7] & 128 != 0 {
            MetricName::ALL.to_vec()
        } else {
            MetricName::OVERLAP.to_vec()
        },
        surface: SurfaceOptions {
            percentile: c[4] as f64 * 100.0 / 255.0,
            tolerance: Some(Tolerance::All(c[5] as f64 / 16.0)),
            spacing: Some([1.0, 0.5 + c[6] as f64 / 64.0, 2.0]),
            elements: if c[0] & 0x80 != 0 {
                dice_core::surface::Elements::Surfels
            } else {
                dice_core::surface::Elements::Voxels
            },
            ..SurfaceOptions::default()
        },
        regions: if c[0] & 0x40 != 0 {
            vec![dice_cli::lesionwise::Region {
                name: "R".into(),
                labels: vec![1, (c[6] >> 3) as i64],
            }]
        } else {
            Vec::new()
        },
        lesion: (c[0] & 0x20 != 0).then(|| dice_cli::lesionwise::LesionOptions {
            matching: if c[1] & 0x80 != 0 {
                dice_cli::lesionwise::Matching::Iou
            } else {
                dice_cli::lesionwise::Matching::Dilation
            },
            min_voxels: (c[1] & 0x40 != 0).then_some(u64::from(c[4] >> 4)),
            ..Default::default()
        }),
        ..Options::default()
    };
    let Ok(pair) = eval::prepare(&p, &g, &opts) else {
        return;
    };
    let Ok(outcome) = eval::evaluate(&pair, &opts, "p", "g") else {
        return;
    };
    let _ = overlay::render(&pair, &outcome.rows, &opts, None);
    let cases = [Case {
        name: "p".into(),
        prediction: "p".into(),
        reference: "g".into(),
        result: Ok(outcome),
    }];
    let report = Report {
        cases: &cases,
        directory: true,
        skipped: &[],
        precision: 4,
        columns: eval::columns(&opts),
        summary: dice_cli::report::SummaryOptions {
            ci: Some(0.9),
            resamples: 50,
            seed: u64::from(c[4]),
        },
        regions: opts.regions.clone(),
    };
    for f in [Format::Table, Format::Csv, Format::Json, Format::Nnunet] {
        report.render(f).expect("a report renders");
    }
}

/// A marker no error message may ever contain: the bytes of a file outside the header's
/// folder (see [`detached`]).
pub const SECRET: &str = "DICESECRET";

/// Detached headers against the data-file policy (`dice_cli::formats::input`). The first byte
/// picks `.nhdr` or `.mhd`; the rest, up to a NUL byte, is the header `case/h.<ext>`, and what
/// follows the NUL is its data file `case/d.raw`. Beside the case folder lies `secret.raw`
/// (numbers and the [`SECRET`] marker), and in it `link.raw`, a symlink to the secret. Whatever
/// the header says, the secret is never opened (checked by device and inode against the
/// readers' own record), no error quotes it, and every error names the header.
pub fn detached(data: &[u8]) {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let ext = if k & 1 == 0 { "nhdr" } else { "mhd" };
    let root = scratch().join("detached");
    let case = root.join("case");
    std::fs::create_dir_all(&case).expect("a case folder");
    let secret = root.join("secret.raw");
    if !secret.exists() {
        std::fs::write(&secret, format!("1 2 3 {SECRET} 4 5\n").repeat(64)).expect("write");
    }
    let link = case.join("link.raw");
    if std::fs::symlink_metadata(&link).is_err() {
        #[cfg(unix)]
        std::os::unix::fs::symlink("../secret.raw", &link).expect("a symlink");
    }
    let (head, tail) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[..0]),
    };
    let header = case.join(format!("h.{ext}"));
    std::fs::write(&header, head).expect("write");
    std::fs::write(case.join("d.raw"), tail).expect("write");
    let result = formats::read(&header);
    let secret_meta = std::fs::metadata(&secret).expect("the secret exists");
    assert!(
        !formats::input::was_read(&secret_meta),
        "a header made the reader open a file outside its folder"
    );
    if let Err(e) = result {
        assert!(!e.contains(SECRET), "an error quotes a file's bytes: {e}");
        assert!(
            e.contains(&format!("h.{ext}")),
            "errors name the header: {e}"
        );
    }
}
