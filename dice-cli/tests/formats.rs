//! Every format dice reads, on files written by the tools people write them with (nibabel,
//! SimpleITK, tifffile, Pillow, NumPy; `tests/data/generate.py`): each decodes to the same
//! label map with the geometry its writer stored. Then hostile input: every truncation (every
//! k-th byte) and seeded bit flips of each file decode to the right volume or give a clear
//! error naming the file, never a panic; headers claiming huge sizes fail fast in little memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dice_cli::eval::{self, Options};
use dice_cli::semantics::{interpret_volume, Kind, Probs, Values};
use dice_cli::{formats, Data, Volume};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/formats")
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("formats")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Expected {
    labels: Vec<u8>,
    files: Vec<(String, serde_json::Value)>,
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(data_dir().join("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let labels = v["labels_xyz_flat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect();
    let files = v["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Expected { labels, files }
}

const NX: usize = 12;
const NY: usize = 10;

fn label_values(v: Volume) -> Vec<i64> {
    match interpret_volume(v, Kind::Auto, false).unwrap().0 {
        Values::Labels(d) => (0..d.len()).map(|i| d.get_f64(i) as i64).collect(),
        Values::Probabilities(_) => panic!("read as probabilities"),
    }
}

#[test]
fn every_format_written_by_its_tool_reads_as_the_same_label_map() {
    let e = expected();
    let slice: Vec<u8> = (0..NY)
        .flat_map(|y| (0..NX).map(move |x| (x, y)))
        .map(|(x, y)| e.labels[(3 * NY + y) * NX + x])
        .collect();
    assert_eq!(e.files.len(), 26, "one entry per sample file");
    for (name, spec) in &e.files {
        let path = data_dir().join(name);
        let v = formats::read(&path).unwrap_or_else(|err| panic!("{name}: {err}"));
        let dims: Vec<usize> = spec["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(v.dims, dims, "{name}");
        if let Some(rows) = spec["affine"].as_array() {
            let g = v
                .geometry
                .clone()
                .unwrap_or_else(|| panic!("{name}: no geometry"));
            for (i, row) in rows.iter().enumerate() {
                for (j, x) in row.as_array().unwrap().iter().enumerate() {
                    let want = x.as_f64().unwrap();
                    assert!(
                        (g.affine[i][j] - want).abs() < 1e-5,
                        "{name}: affine[{i}][{j}] = {} not {want} ({})",
                        g.affine[i][j],
                        g.text()
                    );
                }
            }
        }
        match spec["kind"].as_str().unwrap() {
            "volume" => {
                let want: Vec<i64> = e.labels.iter().map(|&x| x as i64).collect();
                assert_eq!(label_values(v), want, "{name}");
            }
            "slice" => {
                let want: Vec<i64> = slice.iter().map(|&x| x as i64).collect();
                assert_eq!(label_values(v), want, "{name}");
            }
            "mask1" => {
                let want: Vec<i64> = slice.iter().map(|&x| i64::from(x == 1)).collect();
                assert_eq!(label_values(v), want, "{name}");
            }
            "probability" => {
                let (values, _) = interpret_volume(v, Kind::Auto, false).unwrap();
                let Values::Probabilities(Probs::F32(p)) = values else {
                    panic!("{name}: not probabilities")
                };
                let want: Vec<f32> = e.labels.iter().map(|&x| f32::from(x == 1)).collect();
                assert_eq!(p, want, "{name}: 255 · (1/255 as f32) is clamped to 1");
            }
            "reoriented" => {
                // The same image stored another way: Dice 1 for every label, with a note.
                let opts = Options::default();
                let pair = eval::prepare(&path, &data_dir().join("labels.nii.gz"), &opts).unwrap();
                let out = eval::evaluate(&pair, &opts, name, "labels.nii.gz").unwrap();
                assert_eq!(out.rows.len(), 3);
                for r in &out.rows {
                    assert_eq!(r.values[0], Some(1.0), "{name} label {}", r.label);
                }
                assert!(
                    out.notes.iter().any(|n| n.contains("reoriented")),
                    "{:?}",
                    out.notes
                );
            }
            k => panic!("unknown kind {k}"),
        }
    }
}

/// The files a sample consists of (a header and its data file).
fn parts(name: &str) -> Vec<String> {
    let dir = data_dir();
    let stem = name.split('.').next().unwrap();
    let mut v = vec![name.to_string()];
    for ext in [".img", ".img.gz", ".raw", ".zraw", ".raw.gz"] {
        let p = format!("{stem}{ext}");
        if dir.join(&p).exists() && !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

/// Reads `path` (and interprets it) with panics caught: `Err(message)` for a panic.
fn read_guarded(path: &Path) -> Result<Result<Volume, String>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let v = formats::read(path)?;
        // The interpretation must not panic either on whatever decoded.
        let _ = interpret_volume(v.clone(), Kind::Auto, false);
        Ok(v)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn same(a: &Volume, b: &Volume) -> bool {
    a.dims == b.dims && a.data == b.data
}

/// Every k-th truncation of every file of every sample (headers and data files alike): the
/// result is the original volume or an error that names the file, never a panic.
#[test]
fn truncation_sweep() {
    let e = expected();
    let dir = tmp("truncate");
    let mut runs = 0usize;
    let mut accepted = 0usize;
    std::panic::set_hook(Box::new(|_| {}));
    for (name, _) in &e.files {
        let original = formats::read(&data_dir().join(name)).unwrap();
        for part in parts(name) {
            let bytes = std::fs::read(data_dir().join(&part)).unwrap();
            let step = (bytes.len() / 97).max(1);
            let cuts: Vec<usize> = (0..bytes.len())
                .step_by(step)
                .chain(bytes.len().saturating_sub(24)..bytes.len())
                .collect();
            for cut in cuts {
                for p in parts(name) {
                    std::fs::copy(data_dir().join(&p), dir.join(&p)).unwrap();
                }
                std::fs::write(dir.join(&part), &bytes[..cut]).unwrap();
                runs += 1;
                match read_guarded(&dir.join(name)) {
                    Err(panic) => {
                        let _ = std::panic::take_hook();
                        panic!(
                            "{part} cut at {cut} of {} bytes panicked: {panic}",
                            bytes.len()
                        );
                    }
                    Ok(Ok(v)) => {
                        accepted += 1;
                        if std::env::var_os("DICE_SHOW_ACCEPTED").is_some() {
                            eprintln!("accepted: {part} cut at {cut} of {}", bytes.len());
                        }
                        assert!(
                            same(&v, &original),
                            "{part} cut at {cut} of {}: decoded to other voxels",
                            bytes.len()
                        );
                    }
                    Ok(Err(msg)) => assert!(
                        msg.contains(name.as_str()) || msg.contains(part.as_str()),
                        "{part} cut at {cut}: {msg}"
                    ),
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    eprintln!("truncation sweep: {runs} truncated files, {accepted} still decoded to the original (cuts of a header's last newline, or of TIFF resolution values no image needs)");
    assert!(runs > 2000);
}

/// Seeded bit flips of every file: no panic, and whatever decodes is a volume of the claimed
/// size (errors name the file).
#[test]
fn bit_flip_sweep() {
    let e = expected();
    let dir = tmp("flip");
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut runs, mut decoded) = (0usize, 0usize);
    std::panic::set_hook(Box::new(|_| {}));
    for (name, _) in &e.files {
        for part in parts(name) {
            let bytes = std::fs::read(data_dir().join(&part)).unwrap();
            for _ in 0..80 {
                for p in parts(name) {
                    std::fs::copy(data_dir().join(&p), dir.join(&p)).unwrap();
                }
                let mut b = bytes.clone();
                // Mostly header bytes, where a flip changes a claim.
                let limit = if next() % 4 == 0 {
                    b.len()
                } else {
                    b.len().min(600)
                };
                let flips = 1 + next() % 3;
                let mut at = Vec::new();
                for _ in 0..flips {
                    let i = (next() as usize) % limit;
                    b[i] ^= 1 << (next() % 8);
                    at.push(i);
                }
                std::fs::write(dir.join(&part), &b).unwrap();
                runs += 1;
                match read_guarded(&dir.join(name)) {
                    Err(panic) => {
                        let _ = std::panic::take_hook();
                        panic!("{part} with bits flipped at {at:?} panicked: {panic}");
                    }
                    Ok(Ok(v)) => {
                        decoded += 1;
                        assert_eq!(v.data.len(), v.voxels(), "{part} flipped at {at:?}");
                    }
                    Ok(Err(msg)) => assert!(
                        msg.contains(name.as_str()) || msg.contains(part.as_str()),
                        "{part}: {msg}"
                    ),
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "bit-flip sweep: {runs} files, {decoded} decoded (flips in voxel values or unused fields)"
    );
    assert!(runs > 2000);
}

fn dice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dice"))
}

/// Headers that claim gigabytes in a few bytes fail in milliseconds with little memory.
#[test]
fn huge_claims_fail_fast_in_little_memory() {
    let dir = tmp("huge");
    // .npy: 69 bytes claiming 4 GiB of uint8.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let h = "{'descr':'|u1','fortran_order':False,'shape':(65536,65536)}\n";
    npy.extend_from_slice(&(h.len() as u16).to_le_bytes());
    npy.extend_from_slice(h.as_bytes());
    npy.extend_from_slice(&[1, 2, 3]);
    std::fs::write(dir.join("huge.npy"), &npy).unwrap();
    // .nii.gz: a header claiming 2048^3 bytes, gzipped to a few dozen bytes.
    let mut v = Volume::new(vec![4, 4, 4], Data::U8(vec![0; 64]));
    v.geometry = None;
    formats::nifti::write(&dir.join("small.nii"), &v).unwrap();
    let mut hdr = std::fs::read(dir.join("small.nii")).unwrap();
    hdr.truncate(352);
    for k in 0..3 {
        hdr[42 + 2 * k..44 + 2 * k].copy_from_slice(&2048i16.to_le_bytes());
    }
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::best());
        enc.write_all(&hdr).unwrap();
        enc.finish().unwrap();
    }
    std::fs::write(dir.join("huge.nii.gz"), &gz).unwrap();
    // PNG: a 65536² grayscale image in a few dozen bytes (IHDR only, no data).
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&65536u32.to_be_bytes());
    ihdr.extend_from_slice(&65536u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]);
    std::fs::write(dir.join("huge.png"), &png).unwrap();
    // TIFF: a 2^20 × 2^20 8-bit image in one strip, in 150 bytes.
    let mut tif = b"II*\x00\x08\x00\x00\x00".to_vec();
    let entries: [(u16, u16, u32, u32); 9] = [
        (256, 4, 1, 1 << 20),
        (257, 4, 1, 1 << 20),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8),
        (277, 3, 1, 1),
        (278, 4, 1, 1 << 20),
        (279, 4, 1, 1 << 30),
    ];
    tif.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, count, value) in entries {
        tif.extend_from_slice(&tag.to_le_bytes());
        tif.extend_from_slice(&ty.to_le_bytes());
        tif.extend_from_slice(&count.to_le_bytes());
        tif.extend_from_slice(&value.to_le_bytes());
    }
    tif.extend_from_slice(&[0; 4]);
    tif.resize(150, 0);
    std::fs::write(dir.join("huge.tif"), &tif).unwrap();
    for (name, max_len) in [
        ("huge.npy", 80),
        ("huge.nii.gz", 80),
        ("huge.png", 80),
        ("huge.tif", 150),
    ] {
        let p = dir.join(name);
        assert!(
            std::fs::metadata(&p).unwrap().len() <= max_len,
            "{name} is small"
        );
        let t = Instant::now();
        let out = dice()
            .arg("eval")
            .arg(&p)
            .arg(&p)
            .arg("--peak-memory")
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
        let peak: u64 = err
            .lines()
            .find_map(|l| l.strip_prefix("peak memory: "))
            .and_then(|l| l.trim_end_matches(" bytes").parse().ok())
            .unwrap();
        eprintln!(
            "{name}: refused in {:.1} ms, peak {:.1} MiB: {}",
            secs * 1e3,
            peak as f64 / 1048576.0,
            err.lines().next().unwrap_or("")
        );
        assert!(peak < 50 << 20, "{name}: peak {peak} bytes");
        assert!(secs < 2.0, "{name}: {secs} s");
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb88320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A `.nii.gz` whose CRC, trailer or end is wrong is an error, not a volume.
#[test]
fn gzip_streams_are_checked_to_their_end() {
    let dir = tmp("gzip");
    let gz = std::fs::read(data_dir().join("labels.nii.gz")).unwrap();
    let n = gz.len();
    let mut bad_crc = gz.clone();
    bad_crc[n - 8] ^= 0xff;
    let no_trailer = gz[..n - 8].to_vec();
    let mut garbage = gz.clone();
    garbage.extend_from_slice(b"trailing garbage");
    for (name, bytes) in [
        ("crc.nii.gz", bad_crc),
        ("trailer.nii.gz", no_trailer),
        ("garbage.nii.gz", garbage),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
        let e = formats::read(&dir.join(name)).unwrap_err();
        assert!(e.contains(name), "{e}");
        eprintln!("{name}: {e}");
    }
}
