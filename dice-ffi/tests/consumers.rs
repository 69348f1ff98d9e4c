//! C and C++ programs compiled against `dice.h` / `dice.hpp`, linked against the static and the
//! shared library, run under AddressSanitizer and UndefinedBehaviorSanitizer; their results
//! must equal dice-core's on the same data, and their bad-input checks must all pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dice_core::compound::{CompoundLoss, Term};
use dice_core::hard::{self, Confusion, EmptyPolicy, Metric};
use dice_core::{
    Activation, Moment, Reduction, Shape, SoftInput, SoftLoss, SoftStats, Target, Upstream,
    Weighting,
};

const N: usize = 2;
const C: usize = 3;
const S: usize = 50;
const LEN: usize = N * C * S;
const VOX: usize = N * S;

fn pred_at(i: usize) -> f32 {
    ((i * 7919) % 1000) as f32 / 1000.0
}
fn label_at(i: usize) -> u8 {
    ((i * 31) % 3) as u8
}
fn pred_label_at(i: usize) -> u8 {
    ((i * 13) % 3) as u8
}

struct Data {
    pred: Vec<f32>,
    target: Vec<f32>,
    labels: Vec<u8>,
    labels_ignore: Vec<u8>,
    pred_labels: Vec<u8>,
}

fn data() -> Data {
    let pred: Vec<f32> = (0..LEN).map(pred_at).collect();
    let labels: Vec<u8> = (0..VOX).map(label_at).collect();
    let labels_ignore = (0..VOX)
        .map(|v| if v % 17 == 0 { 255 } else { labels[v] })
        .collect();
    let pred_labels = (0..VOX).map(pred_label_at).collect();
    let mut target = vec![0.0f32; LEN];
    for n in 0..N {
        for c in 0..C {
            for s in 0..S {
                target[(n * C + c) * S + s] = f32::from(u8::from(labels[n * S + s] as usize == c));
            }
        }
    }
    Data {
        pred,
        target,
        labels,
        labels_ignore,
        pred_labels,
    }
}

/// The SONAME's version part: `MAJOR`, or `0.MINOR` before 1.0 (build.rs).
fn soname_line() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        m => m.to_string(),
    }
}

/// Where `cargo test` put `libdice.so` and `libdice.a`: beside this test binary.
fn built_libs() -> PathBuf {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        deps.join("libdice.a").exists() && deps.join("libdice.so").exists(),
        "no libdice in {}",
        deps.display()
    );
    deps
}

/// A scratch prefix with the libraries laid out as an installation would (SONAME links).
fn scratch_prefix() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ffi-consumers");
    let lib = root.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let deps = built_libs();
    let version = env!("CARGO_PKG_VERSION");
    let real = lib.join(format!("libdice.so.{version}"));
    std::fs::copy(deps.join("libdice.so"), &real).unwrap();
    std::fs::copy(deps.join("libdice.a"), lib.join("libdice.a")).unwrap();
    for link in [format!("libdice.so.{}", soname_line()), "libdice.so".into()] {
        let _ = std::fs::remove_file(lib.join(&link));
        std::os::unix::fs::symlink(real.file_name().unwrap(), lib.join(&link)).unwrap();
    }
    root
}

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

#[derive(Clone, Copy, Debug)]
enum Link {
    Static,
    Shared,
}

fn compile(lang_cpp: bool, src: &str, link: Link, prefix: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/consumers")
        .join(src);
    let exe = prefix.join(
        format!("{}-{:?}", src.file_stem().unwrap().to_string_lossy(), link).to_lowercase()
            + if lang_cpp { "-cpp" } else { "" },
    );
    let compiler = if lang_cpp {
        std::env::var("CXX").unwrap_or_else(|_| "c++".into())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".into())
    };
    let mut cmd = Command::new(&compiler);
    if lang_cpp {
        cmd.arg("-std=c++17");
    } else {
        cmd.arg("-std=c11");
    }
    cmd.args([
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        "-fno-omit-frame-pointer",
    ])
    .args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all"])
    .arg("-I")
    .arg(include_dir())
    .arg(&src)
    .arg("-o")
    .arg(&exe);
    let lib = prefix.join("lib");
    match link {
        Link::Static => {
            cmd.arg(lib.join("libdice.a"))
                .args(["-lpthread", "-ldl", "-lm"]);
        }
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-ldice")
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lm");
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

fn run(exe: &Path) -> HashMap<String, Vec<Vec<String>>> {
    let out = Command::new(exe)
        .env(
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:halt_on_error=1:allocator_may_return_null=1",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        exe.display(),
        out.status
    );
    // The one allocation made to fail on purpose (2^40 classes) is a warning, not a report.
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("Sanitizer") && !l.contains("AddressSanitizer failed to allocate"))
        .collect();
    assert!(
        reports.is_empty(),
        "sanitizer report from {}:\n{stderr}",
        exe.display()
    );
    let mut map: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for line in stdout.lines() {
        let mut parts = line.split_whitespace().map(str::to_string);
        if let Some(name) = parts.next() {
            map.entry(name).or_default().push(parts.collect());
        }
    }
    assert_eq!(map["failures"][0], ["0"]);
    map
}

/// Soft values computed by C from buffers at other addresses than Rust's: the f32 kernels
/// group partial sums by 64-byte alignment, so the last bits may differ (see
/// `dice_core::ACCUMULATION_ROWS`). Hard counts are compared exactly.
fn close(got: &str, want: f64, rel: f64) -> bool {
    let g: f64 = got.parse().unwrap();
    (g - want).abs() <= rel * want.abs().max(1e-30)
}

fn f64s(v: &[String]) -> Vec<f64> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn conf_line(cs: &[Confusion]) -> Vec<String> {
    cs.iter()
        .flat_map(|c| [c.tp, c.fp, c.fn_, c.tn])
        .map(|v| v.to_string())
        .collect()
}

fn stats(n_c: usize) -> Vec<SoftStats> {
    vec![SoftStats::default(); n_c]
}

/// The surface lines (C and C++ print the same): every label of the two label maps, and label
/// 1's masks, against dice-core.
fn check_surfaces(out: &HashMap<String, Vec<Vec<String>>>, d: &Data) {
    use dice_core::surface::{self, Grid, Surfaces};
    let grid = Grid::new([10, 10, 1], [1.0, 2.0, 1.0]).unwrap();
    let mut res = [Surfaces::BothEmpty; C];
    let tol = [1.0, 1.0, 2.5];
    let mut s = vec![
        0.0;
        surface::label_scratch_len(
            surface::Elements::Voxels,
            grid,
            &d.pred_labels,
            &d.labels,
            None,
            C
        )
        .unwrap()
    ];
    surface::label_surface_distances(
        surface::Elements::Voxels,
        grid,
        &d.pred_labels,
        &d.labels,
        None,
        95.0,
        &tol,
        &mut s,
        &mut res,
    )
    .unwrap();
    let want: Vec<String> = res
        .iter()
        .flat_map(|r| {
            let Surfaces::Distances(x) = r else {
                panic!("every label occurs in both maps")
            };
            [
                "0".to_string(),
                x.pred_surface.to_string(),
                x.ref_surface.to_string(),
                format!("{}", x.max_pred_to_ref),
                format!("{}", x.max_ref_to_pred),
                format!("{}", x.percentile_pooled),
                format!("{}", x.mean_pred_to_ref),
                x.ref_within_tolerance.to_string(),
            ]
        })
        .collect();
    let got: Vec<String> = out["surface_labels"][0]
        .iter()
        .map(|v| match v.parse::<f64>() {
            Ok(x) if v.contains('.') || v.contains('e') => format!("{x}"),
            _ => v.clone(),
        })
        .collect();
    assert_eq!(got, want);
    let Surfaces::Distances(one) = res[1] else {
        unreachable!()
    };
    if let Some(l) = out.get("surface_surfels") {
        let m = |v: &[u8]| -> Vec<u8> { v.iter().map(|&x| u8::from(x == 1)).collect() };
        let (pm, gm) = (m(&d.pred_labels), m(&d.labels));
        let (pf, gf) = (|i: usize| pm[i] != 0, |i: usize| gm[i] != 0);
        let b = surface::bounding_box(grid, &pm, &gm);
        let el = surface::Elements::Surfels;
        let mut s = vec![0.0; surface::scratch_len_for(el, grid, b, &pf, &gf)];
        let Surfaces::Distances(x) =
            surface::distances_for(el, grid, b, &pf, &gf, 95.0, 1.0, &mut s).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            f64s(&l[0]),
            [x.pred_area, x.mean_pred_to_ref, x.percentile_ref_to_pred]
        );
    }
    // components, lesion_wise of the label-1 masks on the 10×10 grid (the C program's)
    if out.contains_key("components") {
        use dice_core::components::{self as cc, Connectivity};
        use dice_core::lesions::BratsParams;
        let (pm, gm) = (m1(&d.pred_labels), m1(&d.labels));
        let mut labels = vec![0u32; pm.len()];
        let mut s = vec![0u32; cc::scratch_len([10, 10, 1])];
        let n = cc::label(&pm, [10, 10, 1], Connectivity::Eight, &mut labels, &mut s).unwrap();
        let mut want = vec![n.to_string()];
        want.extend(labels.iter().map(|l| l.to_string()));
        assert_eq!(out["components"][0], want);
        let g = Grid::new([10, 10, 1], [1.0, 2.0, 1.0]).unwrap();
        let mut p = BratsParams::MET;
        p.connectivity = Connectivity::TwentySix;
        let (r, les) = dice_cli_free_brats(&pm, &gm, g, &p);
        let line = f64s(&out["lesion_wise"][0]);
        assert_eq!(line[0], r.dice);
        assert_eq!(line[1], r.hd95);
        assert_eq!(
            line[2..7],
            [r.tp, r.fp, r.fn_, r.lesions, r.components].map(f64::from)
        );
        assert_eq!(line[7], les as f64);
    }
    let line = f64s(&out["surface_one"][0]);
    assert_eq!(line[0], one.hausdorff());
    assert_eq!(line[1], 1.0);
    assert_eq!(line[2], one.mean_ref_to_pred);
}

/// Every line the C program prints, checked against dice-core.
fn check_c_output(out: &HashMap<String, Vec<Vec<String>>>, d: &Data) {
    let shape = Shape::new(N, C, S);
    assert_eq!(out["version"][0], [env!("CARGO_PKG_VERSION")]);
    // The header's macros are the library's version; the SONAME is the compatibility line.
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out["header_version"][0],
        [
            v.to_string(),
            v.to_string(),
            format!("libdice.so.{}", soname_line())
        ]
    );
    // The extensible-struct protocol: [struct_size kept, tail zeroed, guard intact, value,
    // status with a non-zero tail, status of a too small struct_size, value left untouched,
    // DICE_STATUS_UNSUPPORTED].
    let e = &out["extensible"][0];
    assert_eq!(&e[..3], ["1", "1", "1"], "{e:?}");
    assert!(
        close(&e[3], out["soft_dense"][0][0].parse().unwrap(), 1e-12),
        "{e:?}"
    );
    assert_eq!(e[4], e[7], "a non-zero unknown field is UNSUPPORTED: {e:?}");
    assert_eq!(
        e[5], "8",
        "struct_size below any layout is INVALID_PARAMETER: {e:?}"
    );
    assert_eq!(e[6], "-7", "nothing is written on an error: {e:?}");
    // Bit-identical on one thread, on two started by dice and on the program's pthread pool,
    // and the pool was used.
    assert_eq!(out["threads_identical"][0], ["1", "1"]);
    assert!(out.contains_key("components") && out.contains_key("detection"));

    // soft_dense
    let input = SoftInput::new(shape, &d.pred, Target::Dense(&d.target)).unwrap();
    let mut st = stats(N * C);
    let mut grad = vec![0.0f32; LEN];
    let v = SoftLoss::dice()
        .loss_and_gradient(&input, &mut st, &mut grad)
        .unwrap();
    let line = &out["soft_dense"][0];
    assert!(close(&line[0], v.value, 1e-6), "{} vs {}", line[0], v.value);
    assert_eq!(line[1..3], [v.groups.to_string(), v.defined.to_string()]);
    for (k, i) in [0usize, 7, 299].iter().enumerate() {
        assert!(close(&line[3 + k], grad[*i] as f64, 1e-6), "grad[{i}]");
    }

    // soft_labels: generalized Dice, no background, u8 labels with ignore 255
    let input = SoftInput::new(
        shape,
        &d.pred,
        Target::labels_ignoring(&d.labels_ignore[..], 255),
    )
    .unwrap();
    let loss = SoftLoss::generalized_dice(Weighting::Square).include_background(false);
    let v = loss.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
    let line = &out["soft_labels"][0];
    assert!(close(&line[0], v.value, 1e-6));
    assert!(close(&line[3], grad[55] as f64, 1e-6));

    // soft_softmax: batch Tversky on logits
    let logits: Vec<f32> = d.pred.iter().map(|&p| p * 4.0 - 2.0).collect();
    let input = SoftInput::new(shape, &logits, Target::labels(&d.labels[..])).unwrap();
    let loss = SoftLoss::tversky(0.3, 0.7).batch(true);
    let v = loss
        .loss_and_gradient_logits(&input, Activation::Softmax, &mut st, &mut grad)
        .unwrap();
    let line = &out["soft_softmax"][0];
    assert!(close(&line[0], v.value, 1e-6), "{} vs {}", line[0], v.value);
    assert!(close(&line[1], grad[3] as f64, 1e-6));
    assert!(close(&line[2], grad[151] as f64, 1e-6));

    // compound_ce: Dice (softmax) + cross-entropy with weights and smoothing, ignore label 255
    let w = [0.5, 2.0, 1.5];
    let lab = Target::labels_ignoring(&d.labels_ignore[..], 255);
    let input = SoftInput::new(shape, &logits, lab).unwrap();
    let ce = CompoundLoss::dice_ce(SoftLoss::dice(), Activation::Softmax)
        .lambdas(0.7, 1.0)
        .term(Term::CrossEntropy {
            weight: Some(&w),
            label_smoothing: 0.1,
        });
    let v = ce.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
    let line = &out["compound_ce"][0];
    for (k, want) in [v.value, v.dice.value, v.term].iter().enumerate() {
        assert!(close(&line[k], *want, 1e-12), "{} vs {want}", line[k]);
    }
    assert_eq!(line[3], v.dice.defined.to_string());
    assert!(close(&line[4], grad[3] as f64, 1e-6));
    assert!(close(&line[5], grad[151] as f64, 1e-6));

    // compound_focal: soft-label Dice (sigmoid) + α-balanced focal, dense target
    let input = SoftInput::new(shape, &logits, Target::Dense(&d.target)).unwrap();
    let focal = CompoundLoss::dice_focal(SoftLoss::dice().soft_label(true), Activation::Sigmoid)
        .lambdas(0.7, 1.0)
        .term(Term::Focal {
            gamma: 2.0,
            alpha: Some(0.25),
            weight: None,
        });
    let v = focal.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
    let line = &out["compound_focal"][0];
    assert!(close(&line[0], v.value, 1e-12) && close(&line[1], v.term, 1e-12));
    assert!(close(&line[2], grad[10] as f64, 1e-6));
    assert_eq!(line[3], "2");
    assert!(close(&line[4], st[1].abs_diff, 1e-12));

    // soft_none and soft_gradient_f64
    let p64: Vec<f64> = d.pred.iter().map(|&v| v as f64).collect();
    let g64: Vec<f64> = d.target.iter().map(|&v| v as f64).collect();
    let input = SoftInput::new(shape, &p64, Target::Dense(&g64)).unwrap();
    let none = SoftLoss::dice().reduction(Reduction::None);
    none.statistics(&input, &mut st).unwrap();
    let mut per = vec![None; N * C];
    let v = none.group_losses(shape, &st, &mut per).unwrap();
    let line = &out["soft_none"][0];
    assert!(close(&line[0], v.value, 1e-12));
    for g in 0..N * C {
        assert!(close(&line[1 + g], per[g].unwrap(), 1e-12));
    }
    let mut g = vec![0.0f64; LEN];
    SoftLoss::dice().statistics(&input, &mut st).unwrap();
    SoftLoss::dice()
        .gradient(&input, &st, Upstream::Scalar(2.0), &mut g)
        .unwrap();
    let line = &out["soft_gradient_f64"][0];
    assert!(close(&line[0], g[0], 1e-12) && close(&line[1], g[299], 1e-12));

    check_surfaces(out, d);

    // Hard metrics
    let c = hard::confusion_from_probabilities(&d.pred, &d.target, 0.5).unwrap();
    assert_eq!(out["confusion_prob"][0], conf_line(&[c]));
    let c = hard::confusion_from_masks(&d.pred_labels, &d.labels).unwrap();
    assert_eq!(out["confusion_masks"][0], conf_line(&[c]));
    let mut per_label = [Confusion::default(); C];
    let counted =
        hard::label_confusion(&d.pred_labels, &d.labels_ignore, Some(255), &mut per_label).unwrap();
    assert_eq!(out["labels_u8_ignore"][0], conf_line(&per_label));
    assert_eq!(out["labels_counted"][0], [counted.to_string()]);
    hard::label_confusion(&d.pred_labels, &d.labels, None, &mut per_label).unwrap();
    assert_eq!(out["labels"].len(), 4);
    for line in &out["labels"] {
        assert_eq!(*line, conf_line(&per_label));
    }
    for (m, metric) in Metric::ALL.iter().enumerate() {
        let got = f64s(&out[&format!("metric{m}")][0]);
        for l in 0..C {
            let want = per_label[l].metric(*metric, EmptyPolicy::DEFAULT).unwrap();
            assert_eq!(got[l], want, "{metric:?} label {l}");
        }
    }

    // Accumulator: the first 300 floats as [C, 100], seen in chunks and merged.
    let mut counts = Vec::new();
    let mut want_stats = Vec::new();
    for c in 0..C {
        let r = c * 100..(c + 1) * 100;
        counts.push(
            hard::confusion_from_probabilities(&d.pred[r.clone()], &d.target[r.clone()], 0.5)
                .unwrap(),
        );
        want_stats.push(SoftStats::of(&d.pred[r.clone()], &d.target[r], Moment::Linear).unwrap());
    }
    assert_eq!(out["accumulator_counts"][0], conf_line(&counts));
    check_acc_stats(&f64s(&out["accumulator_stats"][0]), &want_stats);
}

fn check_acc_stats(got: &[f64], want: &[SoftStats]) {
    for (c, s) in want.iter().enumerate() {
        for (k, w) in [s.intersection, s.pred, s.target].into_iter().enumerate() {
            assert!(
                (got[3 * c + k] - w).abs() <= 1e-6 * w.abs().max(1.0),
                "class {c} field {k}: {} vs {w}",
                got[3 * c + k]
            );
        }
    }
}

fn check_cpp_output(out: &HashMap<String, Vec<Vec<String>>>, d: &Data) {
    check_surfaces(out, d);
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        out["compatible"][0],
        ["1", v, v],
        "dice.hpp's version check"
    );
    let c_like: HashMap<String, Vec<Vec<String>>> = out.clone();
    let shape = Shape::new(N, C, S);
    let input = SoftInput::new(shape, &d.pred, Target::Dense(&d.target)).unwrap();
    let mut st = stats(N * C);
    let mut grad = vec![0.0f32; LEN];
    let v = SoftLoss::dice()
        .loss_and_gradient(&input, &mut st, &mut grad)
        .unwrap();
    assert!(close(&c_like["soft_dense"][0][0], v.value, 1e-6));
    assert!(close(&c_like["soft_dense"][0][5], grad[299] as f64, 1e-6));
    let mut per_label = [Confusion::default(); C];
    hard::label_confusion(&d.pred_labels, &d.labels, None, &mut per_label).unwrap();
    // cpp_lesions: dice.hpp's components and lesion-wise scores equal the C ABI's lines.
    {
        use dice_core::components::{self as cc, Connectivity};
        let (pm, gm) = (m1(&d.pred_labels), m1(&d.labels));
        let mut labels = vec![0u32; pm.len()];
        let mut s = vec![0u32; cc::scratch_len([10, 10, 1])];
        let n = cc::label(&pm, [10, 10, 1], Connectivity::Eight, &mut labels, &mut s).unwrap();
        let g = dice_core::surface::Grid::new([10, 10, 1], [1.0, 2.0, 1.0]).unwrap();
        let (r, les) = dice_cli_free_brats(&pm, &gm, g, &dice_core::lesions::BratsParams::MET);
        let cpp = f64s(&c_like["cpp_lesions"][0]);
        assert_eq!(cpp, [f64::from(n), r.dice, les as f64]);
    }
    // compound_ce: DiceCELoss's defaults over the same logits, through dice.hpp.
    let logits: Vec<f32> = d.pred.iter().map(|&p| p * 4.0 - 2.0).collect();
    let input = SoftInput::new(shape, &logits, Target::labels(&d.labels[..])).unwrap();
    let mut zg = vec![0.0f32; LEN];
    let cv = CompoundLoss::dice_ce(SoftLoss::dice(), Activation::Softmax)
        .loss_and_gradient(&input, &mut st, &mut zg)
        .unwrap();
    let line = &c_like["compound_ce"][0];
    assert!(close(&line[0], cv.value, 1e-12) && close(&line[2], cv.term, 1e-12));
    assert_eq!(line[3], LEN.to_string());
    assert!(close(&line[4], zg[5] as f64, 1e-6));
    assert_eq!(c_like["labels"][0], conf_line(&per_label));
    assert_eq!(
        f64s(&c_like["metric0_label1"][0])[0],
        per_label[1].dice(EmptyPolicy::DEFAULT).unwrap()
    );
    let c = hard::confusion_from_probabilities(&d.pred, &d.target, 0.5).unwrap();
    assert_eq!(c_like["confusion_prob"][0], conf_line(&[c]));
    let want: Vec<SoftStats> = (0..C)
        .map(|c| {
            SoftStats::of(
                &d.pred[c * 100..(c + 1) * 100],
                &d.target[c * 100..(c + 1) * 100],
                Moment::Linear,
            )
            .unwrap()
        })
        .collect();
    check_acc_stats(&f64s(&c_like["accumulator_stats"][0]), &want);
}

#[test]
fn c_and_cpp_consumers_under_sanitizers_match_the_rust_api() {
    let prefix = scratch_prefix();
    let d = data();
    for link in [Link::Static, Link::Shared] {
        let exe = compile(false, "api_test.c", link, &prefix);
        check_c_output(&run(&exe), &d);
        let exe = compile(true, "api_test.cpp", link, &prefix);
        check_cpp_output(&run(&exe), &d);
    }
}

#[test]
fn shared_library_has_a_soname() {
    let lib = built_libs().join("libdice.so");
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .expect("readelf (binutils, installed with gcc)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(SONAME)") && text.contains(&format!("[libdice.so.{}]", soname_line())),
        "{text}"
    );
}

/// The label-1 mask of a label map.
fn m1(v: &[u8]) -> Vec<u8> {
    v.iter().map(|&x| u8::from(x == 1)).collect()
}

/// dice-core's BraTS pipeline with generous buffers (the C ABI's answer to compare with).
fn dice_cli_free_brats(
    pred: &[u8],
    gt: &[u8],
    g: dice_core::surface::Grid,
    p: &dice_core::lesions::BratsParams,
) -> (dice_core::lesions::LesionWise, usize) {
    use dice_core::lesions::{self, BratsBuffers, BratsTables, Lesion, Overlap};
    use dice_core::surface::Bounds;
    let n = pred.len();
    let (mut pl, mut ll, mut dil) = (vec![0u32; n], vec![0u32; n], vec![0u8; n]);
    let mut uf = vec![0u32; dice_core::components::scratch_len(g.dims)];
    let (np, nl) = lesions::brats_label(
        pred,
        gt,
        g,
        p,
        &mut BratsBuffers {
            pred_labels: &mut pl,
            lesion_labels: &mut ll,
            dilated: &mut dil,
            union_find: &mut uf,
        },
    )
    .unwrap();
    let b = Bounds {
        lo: [0; 3],
        hi: [0; 3],
    };
    let (mut ps, mut pb) = (vec![0u64; np as usize + 1], vec![b; np as usize + 1]);
    let (mut ls, mut lb) = (vec![0u64; nl as usize + 1], vec![b; nl as usize + 1]);
    let mut les = vec![Lesion::default(); nl as usize];
    let mut touching = vec![Overlap::default(); 4 * n];
    let mut surface = vec![0.0; 1 << 16];
    let r = lesions::brats_scores(
        pred,
        gt,
        g,
        p,
        (&pl, &ll),
        (np, nl),
        &mut BratsTables {
            touching: &mut touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut surface,
        },
    )
    .unwrap();
    (r, les.len())
}
