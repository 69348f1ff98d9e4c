//! `dice`: Dice and overlap metrics of segmentation files.
//!
//! `dice eval PRED GT` evaluates one pair of files, `dice eval PRED_DIR GT_DIR` every pair of
//! files with the same name. Exit status: 0 on success, 1 when a file or case failed, 2 on a
//! usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dice_cli::eval::{self, Options};
use dice_cli::report::{self, Case, Format};
use dice_cli::{dirs, formats, overlay};
use dice_core::hard::{EmptyPolicy, EmptyValue};

#[derive(Parser)]
#[command(
    name = "dice",
    version,
    about = "Exact Dice and overlap metrics of segmentation files (NIfTI, NumPy, PNG, TIFF)"
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

#[derive(Subcommand)]
enum Command {
    /// Per-label Dice, IoU, precision, recall, volume similarity and voxel counts of a
    /// prediction against a reference (two files, or two directories paired by file name).
    Eval {
        /// The prediction: a label map or a probability map (file or directory).
        pred: PathBuf,
        /// The reference: a label map or a binary mask (file or directory).
        gt: PathBuf,
        /// Labels to report, comma-separated (default: every label present in either file).
        #[arg(long, value_delimiter = ',')]
        labels: Option<Vec<i64>>,
        /// Report label 0 (the background) too.
        #[arg(long)]
        include_background: bool,
        /// Reference label whose voxels are left out of every count.
        #[arg(long)]
        ignore_label: Option<i64>,
        /// Value of a metric when reference and prediction are both empty.
        #[arg(long, value_enum, default_value = "skip")]
        empty: Empty,
        /// Value of a metric when the reference is empty but the prediction is not.
        #[arg(long, value_enum, default_value = "zero")]
        empty_reference: Empty,
        /// Threshold for probability maps: positive iff p ≥ threshold.
        #[arg(long, default_value_t = 0.5)]
        threshold: f64,
        /// Also report the soft Dice (2Σpg + s_nr)/(Σp + Σg + s_dr) of a probability map.
        #[arg(long)]
        soft: bool,
        /// Numerator smoothing of --soft.
        #[arg(long, default_value_t = 0.0)]
        smooth_nr: f64,
        /// Denominator smoothing of --soft.
        #[arg(long, default_value_t = 0.0)]
        smooth_dr: f64,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the output to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write a PNG of one slice: true positives green, false positives red, false negatives
        /// blue over the reference (single pairs only).
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// The slice of a 3-D pair for --overlay (along the slowest axis; default: the middle).
        #[arg(long)]
        slice: Option<usize>,
        /// Threads for directories (default: the available cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print the process's peak resident memory to standard error at the end.
        #[arg(long, hide = true)]
        peak_memory: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dice: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    let Command::Eval {
        pred,
        gt,
        labels,
        include_background,
        ignore_label,
        empty,
        empty_reference,
        threshold,
        soft,
        smooth_nr,
        smooth_dr,
        format,
        output,
        overlay: overlay_path,
        slice,
        threads,
        peak_memory,
    } = command;
    let opts = Options {
        labels,
        include_background,
        ignore_label,
        policy: EmptyPolicy {
            reference_empty: empty_reference.into(),
            both_empty: empty.into(),
        },
        threshold,
        soft: soft.then_some((smooth_nr, smooth_dr)),
    };
    let (text, failed) = if pred.is_dir() || gt.is_dir() {
        if !(pred.is_dir() && gt.is_dir()) {
            return Err(format!(
                "{} and {} must both be files or both be directories",
                pred.display(),
                gt.display()
            ));
        }
        if overlay_path.is_some() {
            return Err("--overlay takes a single pair of files".into());
        }
        let pairing = dirs::pair(&pred, &gt)?;
        if pairing.pairs.is_empty() {
            return Err(format!(
                "no file of {} has a namesake in {}",
                pred.display(),
                gt.display()
            ));
        }
        let threads =
            threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let cases = dirs::evaluate_all(&pairing, &opts, threads);
        let failed = cases.iter().any(|c| c.result.is_err());
        (
            report::render(format, &cases, true, &pairing.only_pred, &pairing.only_gt),
            failed,
        )
    } else {
        let p = formats::read(&pred)?;
        let g = formats::read(&gt)?;
        eval::check_pair(
            &p,
            &g,
            &pred.display().to_string(),
            &gt.display().to_string(),
        )?;
        let rows = eval::evaluate(&p, &g, &opts)?;
        if let Some(path) = &overlay_path {
            overlay::write(path, &p, &g, slice, threshold, ignore_label)?;
            eprintln!(
                "overlay written to {} ({})",
                path.display(),
                overlay::LEGEND
            );
        }
        let cases = [Case {
            name: pred.display().to_string(),
            result: Ok(rows),
        }];
        (report::render(format, &cases, false, &[], &[]), false)
    };
    match output {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))?,
        None => print!("{text}"),
    }
    if peak_memory {
        if let Some(bytes) = dice_cli::peak_memory() {
            eprintln!("peak memory: {bytes} bytes");
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
