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

/// Statistics of one metric of one label over cases.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The label.
    pub label: i64,
    /// The metric's name.
    pub metric: String,
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

fn rows(c: &Case) -> &[Row] {
    c.result.as_ref().map_or(&[], |o| o.rows.as_slice())
}

/// Per-label summaries of every metric (named by `columns`) over the cases, in label order.
pub fn summarize(cases: &[Case], columns: &[String]) -> Vec<Summary> {
    let mut labels: Vec<i64> = cases.iter().flat_map(rows).map(|r| r.label).collect();
    labels.sort_unstable();
    labels.dedup();
    let mut out = Vec::new();
    for label in labels {
        for (m, name) in columns.iter().enumerate() {
            let values: Vec<Option<f64>> = cases
                .iter()
                .filter_map(|c| rows(c).iter().find(|r| r.label == label))
                .map(|r| r.values.get(m).copied().flatten())
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
                metric: name.clone(),
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
                                l.insert("label".into(), json!(r.label));
                                for (n, &v) in self.columns.iter().zip(&r.values) {
                                    l.insert(n.clone(), json_metric(v));
                                }
                                if soft {
                                    l.insert("soft_dice".into(), json_metric(r.soft_dice));
                                }
                                let k = r.counts;
                                l.insert("ref_voxels".into(), json!(k.reference()));
                                l.insert("pred_voxels".into(), json!(k.prediction()));
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
            let summary: Vec<Value> = summarize(self.cases, &self.columns)
                .into_iter()
                .map(|s| {
                    json!({
                        "label": s.label,
                        "metric": s.metric,
                        "mean": s.mean,
                        "std": s.std,
                        "median": s.median,
                        "defined": s.defined,
                        "total": s.total,
                    })
                })
                .collect();
            top.insert("summary".into(), Value::Array(summary));
            top.insert("skipped".into(), json!(self.skipped));
        }
        let mut s = serde_json::to_string_pretty(&Value::Object(top)).map_err(|e| e.to_string())?;
        s.push('\n');
        Ok(s)
    }

    fn csv(&self) -> Result<String, String> {
        let soft = self.soft();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = vec!["case", "label"];
        header.extend(self.columns.iter().map(String::as_str));
        if soft {
            header.push("soft_dice");
        }
        header.extend(["ref_voxels", "pred_voxels", "tp", "fp", "fn", "tn", "error"]);
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
                        let mut rec = vec![c.name.clone(), r.label.to_string()];
                        rec.extend(r.values.iter().map(|&m| csv_metric(m)));
                        if soft {
                            rec.push(csv_metric(r.soft_dice));
                        }
                        let k = r.counts;
                        rec.extend(
                            [k.reference(), k.prediction(), k.tp, k.fp, k.fn_, k.tn]
                                .map(|x| x.to_string()),
                        );
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
                        let _ = write!(s, "{:<width$} {:>6}", c.name, r.label);
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
                "{:>6} {:<18} {:>cw$} {:>cw$} {:>cw$} {:>12}",
                "label", "metric", "mean", "std", "median", "defined"
            );
            for m in summarize(self.cases, &self.columns) {
                let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.p$}"));
                let _ = writeln!(
                    s,
                    "{:>6} {:<18} {:>cw$} {:>cw$} {:>cw$} {:>12}",
                    m.label,
                    m.metric,
                    f(m.mean),
                    f(m.std),
                    f(m.median),
                    format!("{}/{}", m.defined, m.total)
                );
            }
            for k in self.skipped {
                let _ = writeln!(s, "skipped: {} ({})", k.path, k.reason);
            }
        }
        s
    }
}
