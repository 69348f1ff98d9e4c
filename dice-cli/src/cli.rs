//! The `dice` command's argument layer and driver: `dice` (src/main.rs) and `exactdice`'s
//! `dice` entry point (the Python wheel) both call [`main_from`], so the evaluator a pip user
//! gets is this code.
//!
//! `dice eval PRED GT` evaluates one pair of files, `dice eval PRED_DIR GT_DIR` every pair of
//! files with the same name. Exit status: 0 on success, 1 when a file or case failed to
//! evaluate, 2 on a usage error (every option value is checked before any file is decoded).
//! A closed standard output (`dice eval … | head -2`) ends the program quietly, as Unix tools do.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::eval::{self, MetricName, Options};
use crate::geometry::DEFAULT_TOLERANCE_MM;
use crate::lesionwise::{LesionOptions, Region};
use crate::names::ShowPath;
use crate::report::{Case, Format, Report, SummaryOptions};
use crate::semantics::Kind;
use crate::surfaces::{SurfaceOptions, Tolerance};
use crate::{dirs, output, overlay};
use clap::{Parser, Subcommand, ValueEnum};
use dice_core::components::Connectivity;
use dice_core::hard::{EmptyPolicy, EmptyValue};
use dice_core::lesions::BratsParams;
use dice_core::surface::{Elements, EmptyDistance, PercentileDefinition};

#[derive(Parser)]
#[command(
    name = "dice",
    version,
    about = "Exact Dice and overlap metrics of segmentation files (NIfTI-1/2, Analyze, NRRD, \
             MetaImage, NumPy, PNG, TIFF)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Empty {
    Nan,
    One,
    Zero,
    Skip,
}

impl From<Empty> for EmptyValue {
    fn from(e: Empty) -> Self {
        match e {
            Empty::Nan => EmptyValue::Nan,
            Empty::One => EmptyValue::One,
            Empty::Zero => EmptyValue::Zero,
            Empty::Skip => EmptyValue::Skip,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SurfaceChoice {
    Voxel,
    Surfel,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum HdDefinition {
    MaxDirected,
    Pooled,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The prediction: a label map or a probability map (file or directory).
    pred: PathBuf,
    /// The reference: a label map or a binary mask (file or directory).
    gt: PathBuf,
    /// Labels to report, comma-separated (default: every label present in either file; with a
    /// probability prediction, the reference labels to compare it with).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    labels: Option<Vec<i64>>,
    /// Report label 0 (the background) too.
    #[arg(long)]
    include_background: bool,
    /// Label whose voxels are left out of every count, in the reference or the prediction.
    #[arg(long, allow_hyphen_values = true)]
    ignore_label: Option<i64>,
    /// Value of a metric when reference and prediction are both empty.
    #[arg(long, value_enum, default_value = "skip")]
    empty: Empty,
    /// Value of a metric that divides by the reference when it is empty but the prediction is
    /// not (Dice, IoU, recall, volume similarity; precision is 0 by definition then).
    #[arg(long, value_enum, default_value = "zero")]
    empty_reference: Empty,
    /// Threshold for probability maps: positive iff p ≥ threshold.
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    threshold: f64,
    /// Also report the soft Dice (2Σpg + s_nr)/(Σp + Σg + s_dr) of a probability map.
    #[arg(long)]
    soft: bool,
    /// Numerator smoothing of --soft.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    smooth_nr: f64,
    /// Denominator smoothing of --soft.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    smooth_dr: f64,
    /// How to read both files' values (default: from the values; see the README).
    #[arg(long = "as", value_enum, conflicts_with_all = ["pred_as", "ref_as"])]
    as_: Option<Kind>,
    /// How to read the prediction's values.
    #[arg(long, value_enum)]
    pred_as: Option<Kind>,
    /// How to read the reference's values.
    #[arg(long, value_enum)]
    ref_as: Option<Kind>,
    /// Refuse label maps with more distinct labels than this (an intensity image is not a
    /// segmentation).
    #[arg(long, default_value_t = 1000)]
    max_labels: usize,
    /// Largest distance (mm) between where the two files put any corner voxel centre for them
    /// to count as the same grid.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_MM, allow_hyphen_values = true)]
    geometry_tolerance: f64,
    /// Compare the arrays as stored, whatever the files' geometry says (with a note).
    #[arg(long)]
    ignore_geometry: bool,
    /// Let a detached header (NRRD `data file`, MetaImage `ElementDataFile`, a `.hdr`'s
    /// `.img`) read a data file outside its own folder (refused by default: a header from an
    /// upload must not reach other files).
    #[arg(long)]
    allow_data_outside: bool,
    /// Metrics to report, comma-separated: dice, iou, precision, recall, vs (the default set),
    /// hd, hd95, assd, masd, nsd (surface distances in mm), or all.
    #[arg(long, value_delimiter = ',')]
    metrics: Option<Vec<String>>,
    /// The percentile of hd95 (the column is named after it: hd99 for 99).
    #[arg(long, default_value_t = 95.0, allow_hyphen_values = true)]
    percentile: f64,
    /// How hd95 combines the two directions: the larger of the two directed percentiles
    /// (MONAI, DeepMind, MetricsReloaded) or the percentile of the pooled distances (medpy).
    #[arg(long, value_enum, default_value = "max-directed")]
    hd_definition: HdDefinition,
    /// NSD tolerance in mm: one value, or label:mm pairs (`1:2,2:1.5`). Required for nsd.
    #[arg(long)]
    tolerance: Option<String>,
    /// Voxel spacing in mm (`X,Y` or `X,Y,Z`) for files that carry none (NumPy, PNG, TIFF).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    spacing: Option<Vec<f64>>,
    /// What surfaces are made of: boundary voxels (medpy, MONAI) or surfels with areas
    /// (DeepMind surface-distance, MONAI use_subvoxels: area-weighted means and NSD).
    #[arg(long, value_enum, default_value = "voxel")]
    surface: SurfaceChoice,
    /// Surface distances when one mask of a label is empty: diagonal (the image's, the
    /// default), inf, nan, skip, zero, or a number of mm (a fixed penalty).
    #[arg(long, default_value = "diagonal")]
    empty_distance: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Decimals of the table (CSV and JSON always carry full precision).
    #[arg(long, default_value_t = 4)]
    precision: usize,
    /// Write the output to this file (atomically) instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write a PNG of one slice: true positives green, false positives red, false negatives
    /// blue (single pairs only; the file name must end in .png).
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// The slice of a 3-D pair for --overlay (along the slowest axis; default: the middle).
    #[arg(long)]
    slice: Option<usize>,
    /// Threads for directories (default and maximum: the available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the process's peak resident memory to standard error at the end.
    #[arg(long, hide = true)]
    peak_memory: bool,
    /// A region, the union of labels, reported after the labels: NAME=L,L,… (repeatable; e.g.
    /// --region WT=1,2,3 --region TC=1,3 --region ET=3 for BraTS).
    #[arg(long = "region", value_name = "NAME=LABELS")]
    regions: Vec<String>,
    /// Lesion-wise metrics per label and region: connected components of both masks matched as
    /// --match says (default: BraTS 2023's dilation matching, lesion-wise Dice and HD95), with
    /// the false-positive and false-negative volumes of autoPET.
    #[arg(long)]
    lesion_wise: bool,
    /// How lesions match: dilation (BraTS) or iou (panoptica, MetricsReloaded).
    #[arg(long = "match", value_enum, default_value = "dilation")]
    matching: crate::lesionwise::Matching,
    /// IoU above which two components match (--match iou; at least 0.5).
    #[arg(long, default_value_t = 0.5)]
    iou_threshold: f64,
    /// Neighbours that connect voxels of a component: 6, 18 or 26 (8 or 4 act on 2-D images as
    /// 26 and 6 do).
    #[arg(long, default_value_t = 26)]
    connectivity: u32,
    /// BraTS 2023 constants of one challenge: gli, ssa, ped (dilation 3, 50 mm³), men
    /// (dilation 1, 50 mm³), met (dilation 1, 2 mm³). Default gli.
    #[arg(long, value_enum)]
    brats: Option<BratsChallenge>,
    /// Dilation steps of the reference before lesions are grouped and matched (BraTS).
    #[arg(long)]
    lesion_dilation: Option<u32>,
    /// Lesions of at most this many voxels leave the lesion-wise score.
    #[arg(long, conflicts_with = "min_lesion_volume")]
    min_lesion_voxels: Option<u64>,
    /// Lesions of at most this volume (mm³) leave the lesion-wise score (BraTS's threshold).
    #[arg(long)]
    min_lesion_volume: Option<f64>,
    /// HD95 of a missed lesion or a false positive, mm (BraTS: 374).
    #[arg(long)]
    hd_penalty: Option<f64>,
    /// Confidence level of a bootstrap interval of each summary mean (directory runs), e.g.
    /// 0.95: the cases are resampled with replacement --bootstrap times.
    #[arg(long)]
    ci: Option<f64>,
    /// Bootstrap resamples for --ci.
    #[arg(long, default_value_t = 2000)]
    bootstrap: usize,
    /// Seed of the bootstrap's resampling (the same seed gives the same interval).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write a self-contained HTML report (*.html): summary table, a plot per metric and
    /// label or region, the worst cases with an overlay of their slice with most errors.
    #[arg(long)]
    report: Option<PathBuf>,
    /// How many worst cases the report shows, with pictures.
    #[arg(long, default_value_t = 5)]
    report_worst: usize,
}

/// Writes `--report` when asked (atomically, as every output).
fn write_html(a: &EvalArgs, cases: &[Case], opts: &Options) -> Result<(), Failure> {
    let Some(path) = &a.report else {
        return Ok(());
    };
    let summary = summary_options(a).map_err(Failure::Usage)?;
    let page = crate::html::render(cases, opts, &summary, a.precision, a.report_worst)
        .map_err(Failure::Eval)?;
    output::write_atomic(path, page.as_bytes()).map_err(Failure::Eval)?;
    let _ = writeln!(std::io::stderr(), "report written to {}", path.shown());
    Ok(())
}

/// The summaries' bootstrap options.
fn summary_options(a: &EvalArgs) -> Result<SummaryOptions, String> {
    if let Some(l) = a.ci {
        if !(l > 0.0 && l < 1.0) {
            return Err(format!("--ci {l} must be a level in (0, 1), e.g. 0.95"));
        }
        if a.bootstrap == 0 {
            return Err("--bootstrap must be at least 1".into());
        }
    }
    Ok(SummaryOptions {
        ci: a.ci,
        resamples: a.bootstrap,
        seed: a.seed,
    })
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BratsChallenge {
    Gli,
    Ssa,
    Ped,
    Men,
    Met,
}

#[derive(Subcommand)]
enum Command {
    /// Per-label Dice, IoU, precision, recall, volume similarity and voxel counts of a
    /// prediction against a reference (two files, or two directories paired by file name).
    Eval(Box<EvalArgs>),
}

/// How a run ends.
enum Failure {
    /// A usage error: exit status 2.
    Usage(String),
    /// An evaluation error: exit status 1.
    Eval(String),
}

/// Runs `dice` with `args` (the program name first, as `std::env::args_os` gives them) and
/// returns its exit status: 0 success, 1 a file or case failed, 2 a usage error (`--help` and
/// `--version` print and return 0). A closed standard output ends the process with status 0.
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let Command::Eval(args) = cli.command;
    let peak = args.peak_memory;
    let result = run(*args);
    if peak {
        if let Some(bytes) = crate::peak_memory() {
            let _ = writeln!(std::io::stderr(), "peak memory: {bytes} bytes");
        }
    }
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            let _ = writeln!(std::io::stderr(), "dice: error: {e}");
            2
        }
        Err(Failure::Eval(e)) => {
            let _ = writeln!(std::io::stderr(), "dice: {e}");
            1
        }
    }
}

/// Every option value, checked before anything is decoded.
fn options(a: &EvalArgs) -> Result<Options, String> {
    summary_options(a)?;
    if let Some(l) = &a.labels {
        if let Some(bad) = l.iter().find(|&&v| v < 0) {
            return Err(format!("--labels {bad}: labels are non-negative integers"));
        }
        if l.is_empty() {
            return Err("--labels needs at least one label".into());
        }
        if let (Some(i), true) = (a.ignore_label, l.contains(&a.ignore_label.unwrap_or(-1))) {
            return Err(format!("--labels includes the --ignore-label {i}"));
        }
    }
    if !(a.threshold.is_finite() && (0.0..=1.0).contains(&a.threshold)) {
        return Err(format!("--threshold {} is not in [0, 1]", a.threshold));
    }
    for (flag, v) in [("--smooth-nr", a.smooth_nr), ("--smooth-dr", a.smooth_dr)] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("{flag} {v} must be a finite number >= 0"));
        }
        if v != 0.0 && !a.soft {
            return Err(format!("{flag} only applies with --soft"));
        }
    }
    if !(a.geometry_tolerance.is_finite() && a.geometry_tolerance >= 0.0) {
        return Err(format!(
            "--geometry-tolerance {} must be a finite number of mm >= 0",
            a.geometry_tolerance
        ));
    }
    if a.max_labels == 0 {
        return Err("--max-labels must be at least 1".into());
    }
    if a.threads == Some(0) {
        return Err("--threads must be at least 1".into());
    }
    if a.precision > 17 {
        return Err(format!(
            "--precision {} is more than the 17 digits an f64 has",
            a.precision
        ));
    }
    if let Some(r) = &a.report {
        let ok = r
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        if !ok {
            return Err(format!(
                "--report {}: the report is an HTML page; name the file *.html",
                r.shown()
            ));
        }
    }
    if a.slice.is_some() && a.overlay.is_none() {
        return Err("--slice goes with --overlay".into());
    }
    if let Some(o) = &a.overlay {
        let ok = o
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if !ok {
            return Err(format!(
                "--overlay {}: overlays are PNG pictures; name the file *.png",
                o.shown()
            ));
        }
    }
    let metrics: Vec<MetricName> = match &a.metrics {
        None => MetricName::OVERLAP.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for name in list {
                let name = name.trim().to_ascii_lowercase();
                if name == "all" {
                    out.extend(MetricName::ALL);
                    continue;
                }
                let m = <MetricName as ValueEnum>::from_str(&name, true).map_err(|_| {
                    format!(
                        "--metrics {name}: not a metric (dice, iou, precision, recall, vs, hd, \
                         hd95, assd, masd, nsd, all)"
                    )
                })?;
                out.push(m);
            }
            let mut seen = Vec::new();
            out.retain(|m| {
                let new = !seen.contains(m);
                seen.push(*m);
                new
            });
            out
        }
    };
    if !(a.percentile.is_finite() && (0.0..=100.0).contains(&a.percentile)) {
        return Err(format!("--percentile {} is not in [0, 100]", a.percentile));
    }
    let tolerance = match &a.tolerance {
        None => None,
        Some(t) => Some(parse_tolerance(t)?),
    };
    if metrics.contains(&MetricName::Nsd) && tolerance.is_none() {
        return Err(
            "nsd needs --tolerance MM (the distance within which boundaries agree; it is \
             task-specific, e.g. 1 or 2 mm)"
                .into(),
        );
    }
    let spacing = match &a.spacing {
        None => None,
        Some(s) => {
            let (lo, hi) = crate::geometry::SPACING_RANGE_MM;
            if !(2..=3).contains(&s.len()) || s.iter().any(|v| !(lo..=hi).contains(v)) {
                return Err(format!(
                    "--spacing {s:?}: two or three numbers of mm in [{lo:e}, {hi:e}]"
                ));
            }
            Some([s[0], s[1], s.get(2).copied().unwrap_or(1.0)])
        }
    };
    let one_empty = match a.empty_distance.as_str() {
        "diagonal" => EmptyDistance::Diagonal,
        "inf" => EmptyDistance::Infinity,
        "nan" => EmptyDistance::Nan,
        "skip" => EmptyDistance::Skip,
        "zero" => EmptyDistance::Zero,
        v => match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 => EmptyDistance::Value(x),
            _ => {
                return Err(format!(
                    "--empty-distance {v}: diagonal, inf, nan, skip, zero or a number of mm"
                ))
            }
        },
    };
    let regions = a
        .regions
        .iter()
        .map(|r| Region::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in regions.iter().enumerate() {
        if regions[..i].iter().any(|o| o.name == r.name) {
            return Err(format!("--region {}: the name is used twice", r.name));
        }
        if let Some(bad) = r
            .labels
            .iter()
            .find(|&&v| v < 0 || Some(v) == a.ignore_label)
        {
            return Err(format!(
                "--region {}: label {bad} is negative or the --ignore-label",
                r.name
            ));
        }
    }
    let lesion_flags = a.brats.is_some()
        || a.lesion_dilation.is_some()
        || a.min_lesion_voxels.is_some()
        || a.min_lesion_volume.is_some()
        || a.hd_penalty.is_some();
    if lesion_flags && !a.lesion_wise {
        return Err(
            "--brats, --lesion-dilation, --min-lesion-voxels, --min-lesion-volume and \
             --hd-penalty go with --lesion-wise"
                .into(),
        );
    }
    let lesion = if a.lesion_wise {
        let mut brats = match a.brats.unwrap_or(BratsChallenge::Gli) {
            BratsChallenge::Gli | BratsChallenge::Ssa | BratsChallenge::Ped => BratsParams::GLI,
            BratsChallenge::Men => BratsParams::MEN,
            BratsChallenge::Met => BratsParams::MET,
        };
        brats.connectivity = match a.connectivity {
            26 | 8 => Connectivity::TwentySix,
            18 => Connectivity::Eighteen,
            6 | 4 => Connectivity::Six,
            c => return Err(format!("--connectivity {c}: 6, 18 or 26 (4 or 8 in 2-D)")),
        };
        if let Some(d) = a.lesion_dilation {
            brats.dilation = d;
        }
        if let Some(v) = a.min_lesion_volume {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "--min-lesion-volume {v} must be a finite number >= 0"
                ));
            }
            brats.min_volume = v;
        }
        if let Some(p) = a.hd_penalty {
            if !(p.is_finite() && p >= 0.0) {
                return Err(format!(
                    "--hd-penalty {p} must be a finite number of mm >= 0"
                ));
            }
            brats.hd_penalty = p;
        }
        if !(0.5..1.0).contains(&a.iou_threshold) {
            return Err(format!(
                "--iou-threshold {} must be in [0.5, 1) (below 0.5 a component can match \
                 several)",
                a.iou_threshold
            ));
        }
        brats.percentile = 95.0;
        Some(LesionOptions {
            matching: a.matching,
            brats,
            iou_threshold: a.iou_threshold,
            min_voxels: a.min_lesion_voxels,
        })
    } else {
        None
    };
    let mut labels = a.labels.clone();
    if let Some(l) = &mut labels {
        let mut seen = std::collections::BTreeSet::new();
        l.retain(|v| seen.insert(*v));
    }
    Ok(Options {
        labels,
        include_background: a.include_background,
        ignore_label: a.ignore_label,
        policy: EmptyPolicy {
            reference_empty: a.empty_reference.into(),
            both_empty: a.empty.into(),
        },
        threshold: a.threshold,
        soft: a.soft.then_some((a.smooth_nr, a.smooth_dr)),
        pred_as: a.as_.or(a.pred_as).unwrap_or_default(),
        ref_as: a.as_.or(a.ref_as).unwrap_or_default(),
        max_labels: a.max_labels,
        geometry_tolerance: a.geometry_tolerance,
        ignore_geometry: a.ignore_geometry,
        concurrent_decode: !(a.pred.is_dir() || a.gt.is_dir()),
        metrics,
        surface: SurfaceOptions {
            percentile: a.percentile,
            definition: match a.hd_definition {
                HdDefinition::MaxDirected => PercentileDefinition::MaxDirected,
                HdDefinition::Pooled => PercentileDefinition::Pooled,
            },
            tolerance,
            spacing,
            one_empty,
            elements: match a.surface {
                SurfaceChoice::Voxel => Elements::Voxels,
                SurfaceChoice::Surfel => Elements::Surfels,
            },
        },
        regions,
        lesion,
        access: crate::formats::Access {
            allow_data_outside: a.allow_data_outside,
        },
        // A single pair's labels and regions share the cores; directory runs already use
        // their threads across pairs.
        lesion_threads: if a.pred.is_dir() || a.gt.is_dir() {
            1
        } else {
            dirs::thread_count(a.threads, usize::MAX)
        },
    })
}

/// `2` (every label) or `1:2,2:1.5` (per label), in mm.
fn parse_tolerance(t: &str) -> Result<Tolerance, String> {
    let mm = |v: &str| -> Result<f64, String> {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("--tolerance {t}: {v:?} is not a number of mm >= 0"))
    };
    if !t.contains(':') {
        return Ok(Tolerance::All(mm(t)?));
    }
    t.split(',')
        .map(|pair| {
            let (l, v) = pair
                .split_once(':')
                .ok_or_else(|| format!("--tolerance {t}: {pair:?} is not label:mm"))?;
            let l = l
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|l| *l >= 0)
                .ok_or_else(|| format!("--tolerance {t}: {l:?} is not a label"))?;
            Ok((l, mm(v)?))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Tolerance::PerLabel)
}

/// Writes to standard output; a closed pipe ends the program quietly.
fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Eval(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

fn run(a: EvalArgs) -> Result<u8, Failure> {
    let opts = options(&a).map_err(Failure::Usage)?;
    let directory = a.pred.is_dir() || a.gt.is_dir();
    if directory && !(a.pred.is_dir() && a.gt.is_dir()) {
        return Err(Failure::Usage(format!(
            "{} and {} must both be files or both be directories",
            a.pred.shown(),
            a.gt.shown()
        )));
    }
    if directory && a.overlay.is_some() {
        return Err(Failure::Usage(
            "--overlay takes a single pair of files".into(),
        ));
    }
    let mut targets: Vec<(&str, &Path)> = Vec::new();
    if let Some(o) = &a.output {
        targets.push(("--output", o));
    }
    if let Some(o) = &a.overlay {
        targets.push(("--overlay", o));
    }
    if let Some(o) = &a.report {
        targets.push(("--report", o));
    }
    output::check_targets(&targets, &[&a.pred, &a.gt]).map_err(Failure::Usage)?;

    let (text, failed) = if directory {
        let pairing = dirs::pair(&a.pred, &a.gt).map_err(Failure::Eval)?;
        let threads = dirs::thread_count(a.threads, pairing.pairs.len());
        let cases = dirs::evaluate_all(&pairing, &opts, threads);
        let failed = cases.iter().any(|c| c.result.is_err());
        let report = Report {
            cases: &cases,
            directory: true,
            skipped: &pairing.skipped,
            precision: a.precision,
            columns: eval::columns(&opts),
            summary: summary_options(&a).map_err(Failure::Usage)?,
            regions: opts.regions.clone(),
        };
        let text = report.render(a.format).map_err(Failure::Eval)?;
        write_html(&a, &cases, &opts)?;
        if pairing.pairs.is_empty() {
            let _ = writeln!(
                std::io::stderr(),
                "dice: no file of {} has a namesake in {}",
                a.pred.shown(),
                a.gt.shown()
            );
        }
        (text, failed || pairing.pairs.is_empty())
    } else {
        let (pn, gn) = (a.pred.shown().to_string(), a.gt.shown().to_string());
        let pair = eval::prepare(&a.pred, &a.gt, &opts).map_err(Failure::Eval)?;
        let outcome = eval::evaluate(&pair, &opts, &pn, &gn).map_err(Failure::Eval)?;
        if let Some(path) = &a.overlay {
            let png =
                overlay::render(&pair, &outcome.rows, &opts, a.slice).map_err(Failure::Eval)?;
            output::write_atomic(path, &png).map_err(Failure::Eval)?;
            let _ = writeln!(
                std::io::stderr(),
                "overlay written to {} ({})",
                path.shown(),
                overlay::LEGEND
            );
        }
        drop(pair);
        if a.format == Format::Csv {
            for n in &outcome.notes {
                let _ = writeln!(std::io::stderr(), "note: {n}");
            }
        }
        let cases = [Case {
            name: pn.clone(),
            prediction: pn,
            reference: gn,
            result: Ok(outcome),
        }];
        let report = Report {
            cases: &cases,
            directory: false,
            skipped: &[],
            precision: a.precision,
            columns: eval::columns(&opts),
            summary: summary_options(&a).map_err(Failure::Usage)?,
            regions: opts.regions.clone(),
        };
        let text = report.render(a.format).map_err(Failure::Eval)?;
        write_html(&a, &cases, &opts)?;
        (text, false)
    };
    match &a.output {
        Some(path) => output::write_atomic(path, text.as_bytes()).map_err(Failure::Eval)?,
        None => print(&text)?,
    }
    Ok(u8::from(failed))
}
