//! Output: a table for people, CSV (the `csv` crate) and JSON (`serde_json`) for programs, for
//! one pair or a directory with its per-label summary and its list of skipped files.
//!
//! Numbers in CSV and JSON carry full precision (the shortest text that reads back as the same
//! `f64`); `--precision` rounds the table only. A metric that the empty policy skipped has no
//! value: an empty CSV cell, JSON `null`. A metric that the policy makes NaN is `nan` in CSV
//! and the string `"NaN"` in JSON (JSON has no NaN), so the two are never confused.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::eval::{Outcome, Row};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header.
    Csv,
    /// JSON.
    Json,
    /// nnU-Net v2's `summary.json` layout (`metric_per_case`, `mean`, `foreground_mean`; Dice
    /// and IoU NaN where a label is absent from both files, as nnU-Net writes them), so that
    /// existing scripts read our results.
    Nnunet,
}

/// One case: a prediction, its reference and the result.
#[derive(Clone, Debug)]
pub struct Case {
    /// Name (the file stem in directory mode, the prediction path otherwise).
    pub name: String,
    /// The prediction's path.
    pub prediction: String,
    /// The reference's path.
    pub reference: String,
    /// The rows and notes, or the error that stopped this case.
    pub result: Result<Outcome, String>,
}

/// A file of a directory run that was not evaluated, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Its path.
    pub path: String,
    /// Why (no reference, a subfolder, not an image file, a name clash, …).
    pub reason: String,
}

/// Statistics of one metric of one label (or region) over cases.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The label, or the region's name.
    pub key: String,
    /// Whether `key` is a region's name.
    pub region: bool,
    /// The metric's name.
    pub metric: String,
    /// Mean of the defined values.
    pub mean: Option<f64>,
    /// Population standard deviation of the defined values.
    pub std: Option<f64>,
    /// Median of the defined values.
    pub median: Option<f64>,
    /// First quartile (linear interpolation, NumPy's default).
    pub q1: Option<f64>,
    /// Third quartile.
    pub q3: Option<f64>,
    /// A bootstrap confidence interval of the mean (with `--ci`).
    pub ci: Option<(f64, f64)>,
    /// Values defined (not skipped, not NaN).
    pub defined: usize,
    /// Cases that reported the label.
    pub total: usize,
}

/// The pooled (aggregated) Dice of one label or region over cases:
/// `Σ 2TP / Σ (2TP + FP + FN)`, the score of the union of every case's voxels.
#[derive(Clone, Debug, PartialEq)]
pub struct Pooled {
    /// The label, or the region's name.
    pub key: String,
    /// Whether `key` is a region's name.
    pub region: bool,
    /// `None` when no case has a voxel of it.
    pub dice: Option<f64>,
    /// Cases that reported it.
    pub cases: usize,
}

/// How summaries are made: the bootstrap of `--ci`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SummaryOptions {
    /// Confidence level of the interval (`None`: no interval).
    pub ci: Option<f64>,
    /// Bootstrap resamples of the cases.
    pub resamples: usize,
    /// Seed of the resampling (SplitMix64), so that intervals are reproducible.
    pub seed: u64,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            ci: None,
            resamples: 2000,
            seed: 0,
        }
    }
}

fn rows(c: &Case) -> &[Row] {
    c.result.as_ref().map_or(&[], |o| o.rows.as_slice())
}

/// Every label and region reported by some case: labels in increasing order, then regions in
/// the order they were given.
fn keys(cases: &[Case]) -> Vec<(String, bool, i64)> {
    let mut labels: Vec<i64> = cases
        .iter()
        .flat_map(rows)
        .filter(|r| r.region.is_none())
        .map(|r| r.label)
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut out: Vec<(String, bool, i64)> = labels
        .into_iter()
        .map(|l| (l.to_string(), false, l))
        .collect();
    for r in cases.iter().flat_map(rows) {
        if let Some(name) = &r.region {
            if !out.iter().any(|(k, reg, _)| *reg && k == name) {
                out.push((name.clone(), true, r.label));
            }
        }
    }
    out
}

fn row_for<'a>(c: &'a Case, key: &str, region: bool) -> Option<&'a Row> {
    rows(c)
        .iter()
        .find(|r| r.region.is_some() == region && r.key() == key)
}

/// Quantile `q` of sorted values by linear interpolation (NumPy's default).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = q * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// SplitMix64: a small, well-known generator, enough for resampling indices reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³² for any case count).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// The percentile bootstrap interval of the mean of `values` at `level`.
fn bootstrap(values: &[f64], level: f64, resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let n = values.len();
    if n == 0 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    Some((quantile(&means, a)?, quantile(&means, 1.0 - a)?))
}

/// Per-label (and per-region) summaries of every metric (named by `columns`) over the cases.
pub fn summarize(cases: &[Case], columns: &[String], opts: &SummaryOptions) -> Vec<Summary> {
    let mut out = Vec::new();
    for (key, region, _) in keys(cases) {
        for (m, name) in columns.iter().enumerate() {
            let values: Vec<Option<f64>> = cases
                .iter()
                .filter_map(|c| row_for(c, &key, region))
                .map(|r| r.values.get(m).copied().flatten())
                .collect();
            // In case order: the bootstrap resamples cases.
            let in_order: Vec<f64> = values
                .iter()
                .flatten()
                .copied()
                .filter(|v| !v.is_nan())
                .collect();
            let mut defined = in_order.clone();
            defined.sort_by(f64::total_cmp);
            let n = defined.len();
            let mean = (n > 0).then(|| defined.iter().sum::<f64>() / n as f64);
            let std = mean.map(|m| {
                (defined.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt()
            });
            out.push(Summary {
                key: key.clone(),
                region,
                metric: name.clone(),
                mean,
                std,
                median: quantile(&defined, 0.5),
                q1: quantile(&defined, 0.25),
                q3: quantile(&defined, 0.75),
                ci: opts
                    .ci
                    .and_then(|l| bootstrap(&in_order, l, opts.resamples, opts.seed)),
                defined: n,
                total: values.len(),
            });
        }
    }
    out
}

/// The pooled Dice of every label and region over the cases.
pub fn pooled(cases: &[Case]) -> Vec<Pooled> {
    keys(cases)
        .into_iter()
        .map(|(key, region, _)| {
            let (mut num, mut den, mut n) = (0u128, 0u128, 0usize);
            for r in cases.iter().filter_map(|c| row_for(c, &key, region)) {
                let k = r.counts;
                num += 2 * u128::from(k.tp);
                den += 2 * u128::from(k.tp) + u128::from(k.fp) + u128::from(k.fn_);
                n += 1;
            }
            Pooled {
                key,
                region,
                dice: (den > 0).then(|| num as f64 / den as f64),
                cases: n,
            }
        })
        .collect()
}

/// The same value with every object's keys in sorted order (Python's `sort_keys=True`).
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// A label as a JSON number, a region as its name.
fn key_json(key: &str, region: bool) -> Value {
    match (region, key.parse::<i64>()) {
        (false, Ok(l)) => json!(l),
        _ => json!(key),
    }
}

/// A metric for JSON: a number, `null` when skipped, `"NaN"` when the policy says NaN.
fn json_metric(v: Option<f64>) -> Value {
    match v {
        None => Value::Null,
        Some(x) if x.is_nan() => Value::String("NaN".into()),
        Some(x) => json!(x),
    }
}

/// A metric for CSV: full precision, `nan`, or empty when skipped.
fn csv_metric(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(x) if x.is_nan() => "nan".into(),
        Some(x) => format!("{x}"),
    }
}

/// A metric for the table, rounded to `precision` decimals.
fn table_metric(v: Option<f64>, precision: usize) -> String {
    match v {
        None => "skipped".into(),
        Some(x) if x.is_nan() => "nan".into(),
        Some(x) => format!("{x:.precision$}"),
    }
}

/// What is rendered.
pub struct Report<'a> {
    /// The cases, in name order.
    pub cases: &'a [Case],
    /// Directory mode (adds the summary and the skipped list).
    pub directory: bool,
    /// Files not evaluated.
    pub skipped: &'a [Skipped],
    /// Decimals of the table.
    pub precision: usize,
    /// The metric columns, in the rows' order ([`crate::eval::columns`]).
    pub columns: Vec<String>,
    /// Bootstrap options of the summaries.
    pub summary: SummaryOptions,
    /// The regions, for nnU-Net's region keys.
    pub regions: Vec<crate::lesionwise::Region>,
}

impl Report<'_> {
    fn soft(&self) -> bool {
        self.cases
            .iter()
            .flat_map(rows)
            .any(|r| r.soft_dice.is_some())
    }

    /// Renders in `format`.
    pub fn render(&self, format: Format) -> Result<String, String> {
        match format {
            Format::Table => Ok(self.table()),
            Format::Csv => self.csv(),
            Format::Json => self.json(),
            Format::Nnunet => self.nnunet(),
        }
    }

    fn json(&self) -> Result<String, String> {
        let soft = self.soft();
        let cases: Vec<Value> = self
            .cases
            .iter()
            .map(|c| {
                let mut m = Map::new();
                m.insert("case".into(), json!(c.name));
                m.insert("prediction".into(), json!(c.prediction));
                m.insert("reference".into(), json!(c.reference));
                match &c.result {
                    Err(e) => {
                        m.insert("error".into(), json!(e));
                    }
                    Ok(o) => {
                        m.insert("notes".into(), json!(o.notes));
                        let labels: Vec<Value> = o
                            .rows
                            .iter()
                            .map(|r| {
                                let mut l = Map::new();
                                match &r.region {
                                    Some(name) => l.insert("label".into(), json!(name)),
                                    None => l.insert("label".into(), json!(r.label)),
                                };
                                for (n, &v) in self.columns.iter().zip(&r.values) {
                                    l.insert(n.clone(), json_metric(v));
                                }
                                if soft {
                                    l.insert("soft_dice".into(), json_metric(r.soft_dice));
                                }
                                let k = r.counts;
                                l.insert("ref_voxels".into(), json!(k.reference()));
                                l.insert("pred_voxels".into(), json!(k.prediction()));
                                if let Some(ml) = r.voxel_ml {
                                    l.insert("ref_ml".into(), json!(k.reference() as f64 * ml));
                                    l.insert("pred_ml".into(), json!(k.prediction() as f64 * ml));
                                }
                                l.insert("tp".into(), json!(k.tp));
                                l.insert("fp".into(), json!(k.fp));
                                l.insert("fn".into(), json!(k.fn_));
                                l.insert("tn".into(), json!(k.tn));
                                Value::Object(l)
                            })
                            .collect();
                        m.insert("labels".into(), Value::Array(labels));
                    }
                }
                Value::Object(m)
            })
            .collect();
        let mut top = Map::new();
        top.insert(
            "conventions".into(),
            json!({
                "null": "skipped by the empty policy: no value",
                "NaN": "NaN by the empty policy"
            }),
        );
        top.insert("cases".into(), Value::Array(cases));
        if self.directory {
            let summary: Vec<Value> = summarize(self.cases, &self.columns, &self.summary)
                .into_iter()
                .map(|s| {
                    let mut m = Map::new();
                    m.insert("label".into(), key_json(&s.key, s.region));
                    m.insert("metric".into(), json!(s.metric));
                    m.insert("mean".into(), json!(s.mean));
                    m.insert("std".into(), json!(s.std));
                    m.insert("median".into(), json!(s.median));
                    m.insert("q1".into(), json!(s.q1));
                    m.insert("q3".into(), json!(s.q3));
                    if let Some(level) = self.summary.ci {
                        m.insert("ci_level".into(), json!(level));
                        m.insert("ci".into(), json!(s.ci.map(|(a, b)| [a, b])));
                    }
                    m.insert("defined".into(), json!(s.defined));
                    m.insert("total".into(), json!(s.total));
                    Value::Object(m)
                })
                .collect();
            top.insert("summary".into(), Value::Array(summary));
            let pooled: Vec<Value> = pooled(self.cases)
                .into_iter()
                .map(|p| {
                    json!({
                        "label": key_json(&p.key, p.region),
                        "dice": p.dice,
                        "cases": p.cases,
                    })
                })
                .collect();
            top.insert("pooled".into(), Value::Array(pooled));
            top.insert("skipped".into(), json!(self.skipped));
        }
        let mut s = serde_json::to_string_pretty(&Value::Object(top)).map_err(|e| e.to_string())?;
        s.push('\n');
        Ok(s)
    }

    /// nnU-Net v2's `summary.json`: keys sorted, four-space indent, `NaN` literals (Python's
    /// `json.dump`, which nnU-Net's `load_json` reads back), labels as `"1"`, regions as
    /// `"(1, 2, 3)"`; `mean` is the NaN-ignoring mean over cases, `foreground_mean` the mean
    /// of the labels' means (label 0 left out).
    fn nnunet(&self) -> Result<String, String> {
        const NAN: &str = "\u{0}NaN\u{0}";
        let num = |v: f64| if v.is_nan() { json!(NAN) } else { json!(v) };
        let key = |r: &Row| match &r.region {
            None => r.label.to_string(),
            Some(name) => {
                let labels = self
                    .regions
                    .iter()
                    .find(|x| &x.name == name)
                    .map(|x| x.labels.clone())
                    .unwrap_or_default();
                let parts: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
                if parts.len() == 1 {
                    format!("({},)", parts[0])
                } else {
                    format!("({})", parts.join(", "))
                }
            }
        };
        // Per case: nnU-Net's metrics of every row.
        let metrics_of = |r: &Row| -> Vec<(&'static str, f64)> {
            let k = r.counts;
            let (tp, fp, fn_) = (k.tp as f64, k.fp as f64, k.fn_ as f64);
            let denom = tp + fp + fn_;
            let (dice, iou) = if denom == 0.0 {
                (f64::NAN, f64::NAN)
            } else {
                (2.0 * tp / (2.0 * tp + fp + fn_), tp / denom)
            };
            vec![
                ("Dice", dice),
                ("FN", fn_),
                ("FP", fp),
                ("IoU", iou),
                ("TN", k.tn as f64),
                ("TP", tp),
                ("n_pred", fp + tp),
                ("n_ref", fn_ + tp),
            ]
        };
        let mut per_case = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for c in self.cases {
            let o = c
                .result
                .as_ref()
                .map_err(|e| format!("--format nnunet: {} could not be evaluated: {e}", c.name))?;
            let mut m = Map::new();
            for r in &o.rows {
                let k = key(r);
                if !keys.contains(&k) {
                    keys.push(k.clone());
                }
                let mut v = Map::new();
                for (name, x) in metrics_of(r) {
                    let is_count = !matches!(name, "Dice" | "IoU");
                    v.insert(name.into(), if is_count { json!(x as u64) } else { num(x) });
                }
                m.insert(k, Value::Object(v));
            }
            per_case.push(json!({
                "metrics": Value::Object(m),
                "prediction_file": c.prediction,
                "reference_file": c.reference,
            }));
        }
        let names = ["Dice", "FN", "FP", "IoU", "TN", "TP", "n_pred", "n_ref"];
        let mut means = Map::new();
        let mut fg: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        for k in &keys {
            let mut v = Map::new();
            for (j, name) in names.iter().enumerate() {
                let xs: Vec<f64> = self
                    .cases
                    .iter()
                    .flat_map(rows)
                    .filter(|r| &key(r) == k)
                    .map(|r| metrics_of(r)[j].1)
                    .filter(|x| !x.is_nan())
                    .collect();
                let mean = if xs.is_empty() {
                    f64::NAN
                } else {
                    xs.iter().sum::<f64>() / xs.len() as f64
                };
                if k != "0" {
                    fg[j].push(mean);
                }
                v.insert((*name).into(), num(mean));
            }
            means.insert(k.clone(), Value::Object(v));
        }
        let mut foreground = Map::new();
        for (j, name) in names.iter().enumerate() {
            // np.mean: NaN as soon as one label's mean is NaN.
            let m = if fg[j].is_empty() {
                f64::NAN
            } else {
                fg[j].iter().sum::<f64>() / fg[j].len() as f64
            };
            foreground.insert((*name).into(), num(m));
        }
        let top = json!({
            "foreground_mean": Value::Object(foreground),
            "mean": Value::Object(means),
            "metric_per_case": per_case,
        });
        // serde_json's maps keep insertion order here; sort every map's keys as nnU-Net does.
        let sorted = sort_keys(top);
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        sorted.serialize(&mut ser).map_err(|e| e.to_string())?;
        let text = String::from_utf8(buf).map_err(|e| e.to_string())?;
        Ok(text.replace(&format!("\"{}\"", NAN.replace('\u{0}', "\\u0000")), "NaN") + "\n")
    }

    fn csv(&self) -> Result<String, String> {
        let soft = self.soft();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = vec!["case", "label"];
        header.extend(self.columns.iter().map(String::as_str));
        if soft {
            header.push("soft_dice");
        }
        header.extend([
            "ref_voxels",
            "pred_voxels",
            "ref_ml",
            "pred_ml",
            "tp",
            "fp",
            "fn",
            "tn",
            "error",
        ]);
        let width = header.len();
        let e = |e: csv::Error| e.to_string();
        w.write_record(&header).map_err(e)?;
        for c in self.cases {
            match &c.result {
                Err(err) => {
                    let mut rec = vec![c.name.clone()];
                    rec.resize(width - 1, String::new());
                    rec.push(err.clone());
                    w.write_record(&rec).map_err(e)?;
                }
                Ok(o) => {
                    for r in &o.rows {
                        let mut rec = vec![c.name.clone(), r.key()];
                        rec.extend(r.values.iter().map(|&m| csv_metric(m)));
                        if soft {
                            rec.push(csv_metric(r.soft_dice));
                        }
                        let k = r.counts;
                        rec.extend([k.reference(), k.prediction()].map(|x| x.to_string()));
                        let ml = |v: u64| {
                            r.voxel_ml
                                .map_or(String::new(), |m| format!("{}", v as f64 * m))
                        };
                        rec.extend([ml(k.reference()), ml(k.prediction())]);
                        rec.extend([k.tp, k.fp, k.fn_, k.tn].map(|x| x.to_string()));
                        rec.push(String::new());
                        w.write_record(&rec).map_err(e)?;
                    }
                }
            }
        }
        for s in self.skipped {
            let mut rec = vec![s.path.clone()];
            rec.resize(width - 1, String::new());
            rec.push(format!("skipped: {}", s.reason));
            w.write_record(&rec).map_err(e)?;
        }
        let bytes = w.into_inner().map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }

    fn table(&self) -> String {
        let soft = self.soft();
        let p = self.precision;
        let cw = (p + 3).max(9);
        let mut s = String::new();
        let width = self
            .cases
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let mut header = format!("{:<width$} {:>6}", "case", "label");
        for n in &self.columns {
            let n = if n == "volume_similarity" {
                "vol_sim"
            } else {
                n.as_str()
            };
            let _ = write!(header, " {n:>cw$}");
        }
        if soft {
            let _ = write!(header, " {:>cw$}", "soft_dice");
        }
        let _ = write!(
            header,
            " {:>12} {:>12} {:>12} {:>12} {:>12}",
            "ref_voxels", "pred_voxels", "tp", "fp", "fn"
        );
        let _ = writeln!(s, "{header}");
        for c in self.cases {
            match &c.result {
                Err(e) => {
                    let _ = writeln!(s, "{:<width$} error: {e}", c.name);
                }
                Ok(o) if o.rows.is_empty() => {
                    let _ = writeln!(s, "{:<width$} (no label in either file)", c.name);
                }
                Ok(o) => {
                    for r in &o.rows {
                        let _ = write!(s, "{:<width$} {:>6}", c.name, r.key());
                        for &m in &r.values {
                            let _ = write!(s, " {:>cw$}", table_metric(m, p));
                        }
                        if soft {
                            let _ = write!(s, " {:>cw$}", table_metric(r.soft_dice, p));
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
        for c in self.cases {
            if let Ok(o) = &c.result {
                for n in &o.notes {
                    let _ = writeln!(s, "note: {n}");
                }
            }
        }
        if self.directory {
            let _ = writeln!(
                s,
                "\nsummary over cases (defined values only; skipped and NaN are counted apart)"
            );
            let _ = writeln!(
                s,
                "{:>6} {:<18} {:>cw$} {:>cw$} {:>cw$} {:>cw$} {:>cw$} {:>12}{}",
                "label",
                "metric",
                "mean",
                "std",
                "q1",
                "median",
                "q3",
                "defined",
                self.summary.ci.map_or(String::new(), |l| format!(
                    "  {}% CI (bootstrap)",
                    l * 100.0
                ))
            );
            let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
            for m in summarize(self.cases, &self.columns, &self.summary) {
                let ci =
                    m.ci.map_or(String::new(), |(a, b)| format!("  [{a:.p$}, {b:.p$}]"));
                let _ = writeln!(
                    s,
                    "{:>6} {:<18} {:>cw$} {:>cw$} {:>cw$} {:>cw$} {:>cw$} {:>12}{ci}",
                    m.key,
                    m.metric,
                    f(m.mean),
                    f(m.std),
                    f(m.q1),
                    f(m.median),
                    f(m.q3),
                    format!("{}/{}", m.defined, m.total)
                );
            }
            for p in pooled(self.cases) {
                let _ = writeln!(
                    s,
                    "{:>6} {:<18} {:>cw$}   (Σ2TP/Σ(2TP+FP+FN) over {} cases)",
                    p.key,
                    "pooled_dice",
                    f(p.dice),
                    p.cases
                );
            }
            for k in self.skipped {
                let _ = writeln!(s, "skipped: {} ({})", k.path, k.reason);
            }
        }
        s
    }
}
