//! Output: table, CSV or JSON, for one pair or a directory with its per-label summary.

use std::fmt::Write as _;

use crate::eval::Row;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header.
    Csv,
    /// JSON.
    Json,
}

const NAMES: [&str; 5] = ["dice", "iou", "precision", "recall", "volume_similarity"];

fn num(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(x) if x.is_nan() => "nan".into(),
        Some(x) => format!("{x:.6}"),
    }
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "null".into(),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One case: a prediction, its reference and the per-label rows.
pub struct Case {
    /// Name (the file stem in directory mode, the prediction path otherwise).
    pub name: String,
    /// The rows, or the error that stopped this case.
    pub result: Result<Vec<Row>, String>,
}

/// Statistics of one metric of one label over cases.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The label.
    pub label: i64,
    /// The metric's name.
    pub metric: &'static str,
    /// Mean of the defined values.
    pub mean: Option<f64>,
    /// Population standard deviation of the defined values.
    pub std: Option<f64>,
    /// Median of the defined values.
    pub median: Option<f64>,
    /// Values defined (not skipped, not NaN).
    pub defined: usize,
    /// Cases that reported the label.
    pub total: usize,
}

/// Per-label summaries of every metric over the cases, in label order.
pub fn summarize(cases: &[Case]) -> Vec<Summary> {
    let mut labels: Vec<i64> = cases
        .iter()
        .filter_map(|c| c.result.as_ref().ok())
        .flatten()
        .map(|r| r.label)
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut out = Vec::new();
    for label in labels {
        for (m, name) in NAMES.iter().enumerate() {
            let values: Vec<Option<f64>> = cases
                .iter()
                .filter_map(|c| c.result.as_ref().ok())
                .filter_map(|rows| rows.iter().find(|r| r.label == label))
                .map(|r| r.metrics[m])
                .collect();
            let mut defined: Vec<f64> = values
                .iter()
                .flatten()
                .copied()
                .filter(|v| !v.is_nan())
                .collect();
            defined.sort_by(f64::total_cmp);
            let n = defined.len();
            let mean = (n > 0).then(|| defined.iter().sum::<f64>() / n as f64);
            let std = mean.map(|m| {
                (defined.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt()
            });
            let median = (n > 0).then(|| {
                if n % 2 == 1 {
                    defined[n / 2]
                } else {
                    (defined[n / 2 - 1] + defined[n / 2]) / 2.0
                }
            });
            out.push(Summary {
                label,
                metric: name,
                mean,
                std,
                median,
                defined: n,
                total: values.len(),
            });
        }
    }
    out
}

/// Renders cases (and, with more than one, the summary and the unpaired files).
pub fn render(
    format: Format,
    cases: &[Case],
    directory: bool,
    only_pred: &[String],
    only_gt: &[String],
) -> String {
    let soft = cases
        .iter()
        .filter_map(|c| c.result.as_ref().ok())
        .flatten()
        .any(|r| r.soft_dice.is_some());
    let summary = if directory {
        summarize(cases)
    } else {
        Vec::new()
    };
    let mut s = String::new();
    match format {
        Format::Table => {
            let width = cases
                .iter()
                .map(|c| c.name.chars().count())
                .max()
                .unwrap_or(0)
                .max(4);
            let mut header = format!("{:<width$} {:>6}", "case", "label");
            for n in ["dice", "iou", "precision", "recall", "vol_sim"] {
                let _ = write!(header, " {n:>10}");
            }
            if soft {
                let _ = write!(header, " {:>10}", "soft_dice");
            }
            let _ = write!(
                header,
                " {:>12} {:>12} {:>12} {:>12} {:>12}",
                "ref_voxels", "pred_voxels", "tp", "fp", "fn"
            );
            let _ = writeln!(s, "{header}");
            for c in cases {
                match &c.result {
                    Err(e) => {
                        let _ = writeln!(s, "{:<width$} error: {e}", c.name);
                    }
                    Ok(rows) if rows.is_empty() => {
                        let _ = writeln!(s, "{:<width$} (no label in either file)", c.name);
                    }
                    Ok(rows) => {
                        for r in rows {
                            let _ = write!(s, "{:<width$} {:>6}", c.name, r.label);
                            for m in r.metrics {
                                let _ = write!(
                                    s,
                                    " {:>10}",
                                    if m.is_none() {
                                        "skipped".into()
                                    } else {
                                        num(m)
                                    }
                                );
                            }
                            if soft {
                                let _ = write!(s, " {:>10}", num(r.soft_dice));
                            }
                            let k = r.counts;
                            let _ = writeln!(
                                s,
                                " {:>12} {:>12} {:>12} {:>12} {:>12}",
                                k.reference(),
                                k.prediction(),
                                k.tp,
                                k.fp,
                                k.fn_
                            );
                        }
                    }
                }
            }
            if directory {
                let _ = writeln!(
                    s,
                    "\nsummary over cases (defined values only; skipped and NaN are counted apart)"
                );
                let _ = writeln!(
                    s,
                    "{:>6} {:<18} {:>10} {:>10} {:>10} {:>12}",
                    "label", "metric", "mean", "std", "median", "defined"
                );
                for m in &summary {
                    let _ = writeln!(
                        s,
                        "{:>6} {:<18} {:>10} {:>10} {:>10} {:>12}",
                        m.label,
                        m.metric,
                        num(m.mean),
                        num(m.std),
                        num(m.median),
                        format!("{}/{}", m.defined, m.total)
                    );
                }
                for p in only_pred {
                    let _ = writeln!(s, "only a prediction, no reference: {p}");
                }
                for g in only_gt {
                    let _ = writeln!(s, "only a reference, no prediction: {g}");
                }
            }
        }
        Format::Csv => {
            let _ = write!(s, "case,label,{}", NAMES.join(","));
            if soft {
                s.push_str(",soft_dice");
            }
            s.push_str(",ref_voxels,pred_voxels,tp,fp,fn,tn,error\n");
            let quote = |t: &str| {
                if t.contains([',', '"', '\n']) {
                    format!("\"{}\"", t.replace('"', "\"\""))
                } else {
                    t.to_string()
                }
            };
            for c in cases {
                match &c.result {
                    Err(e) => {
                        let empty = ",".repeat(NAMES.len() + usize::from(soft) + 6);
                        let _ = writeln!(s, "{},{empty},{}", quote(&c.name), quote(e));
                    }
                    Ok(rows) => {
                        for r in rows {
                            let _ = write!(s, "{},{}", quote(&c.name), r.label);
                            for m in r.metrics {
                                let _ = write!(s, ",{}", num(m));
                            }
                            if soft {
                                let _ = write!(s, ",{}", num(r.soft_dice));
                            }
                            let k = r.counts;
                            let _ = writeln!(
                                s,
                                ",{},{},{},{},{},{},",
                                k.reference(),
                                k.prediction(),
                                k.tp,
                                k.fp,
                                k.fn_,
                                k.tn
                            );
                        }
                    }
                }
            }
        }
        Format::Json => {
            s.push_str("{\n  \"cases\": [");
            for (i, c) in cases.iter().enumerate() {
                let _ = write!(
                    s,
                    "{}\n    {{\"case\": {}, ",
                    if i > 0 { "," } else { "" },
                    json_str(&c.name)
                );
                match &c.result {
                    Err(e) => {
                        let _ = write!(s, "\"error\": {}}}", json_str(e));
                    }
                    Ok(rows) => {
                        s.push_str("\"labels\": [");
                        for (j, r) in rows.iter().enumerate() {
                            let _ = write!(
                                s,
                                "{}{{\"label\": {}",
                                if j > 0 { ", " } else { "" },
                                r.label
                            );
                            for (n, m) in NAMES.iter().zip(r.metrics) {
                                let _ = write!(s, ", \"{n}\": {}", json_num(m));
                            }
                            if soft {
                                let _ = write!(s, ", \"soft_dice\": {}", json_num(r.soft_dice));
                            }
                            let k = r.counts;
                            let _ = write!(
                                s,
                                ", \"ref_voxels\": {}, \"pred_voxels\": {}, \"tp\": {}, \"fp\": {}, \"fn\": {}, \"tn\": {}}}",
                                k.reference(),
                                k.prediction(),
                                k.tp,
                                k.fp,
                                k.fn_,
                                k.tn
                            );
                        }
                        s.push_str("]}");
                    }
                }
            }
            s.push_str("\n  ]");
            if directory {
                s.push_str(",\n  \"summary\": [");
                for (i, m) in summary.iter().enumerate() {
                    let _ = write!(
                        s,
                        "{}\n    {{\"label\": {}, \"metric\": \"{}\", \"mean\": {}, \"std\": {}, \"median\": {}, \"defined\": {}, \"total\": {}}}",
                        if i > 0 { "," } else { "" },
                        m.label,
                        m.metric,
                        json_num(m.mean),
                        json_num(m.std),
                        json_num(m.median),
                        m.defined,
                        m.total
                    );
                }
                let list =
                    |v: &[String]| v.iter().map(|x| json_str(x)).collect::<Vec<_>>().join(", ");
                let _ = write!(
                    s,
                    "\n  ],\n  \"only_prediction\": [{}],\n  \"only_reference\": [{}]",
                    list(only_pred),
                    list(only_gt)
                );
            }
            s.push_str("\n}\n");
        }
    }
    s
}
