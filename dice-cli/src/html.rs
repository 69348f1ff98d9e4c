//! `--report report.html`: one self-contained page (no network, no script) with the summary
//! table, a box-and-strip plot per metric and label or region (SVG drawn by `plotters`), the
//! worst cases ranked, and for each of them an overlay of its slice with the most errors (PNG,
//! embedded). The page is written with `maud`, which escapes every name and path.

use base64::Engine as _;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use plotters::prelude::*;

use crate::eval::{self, Options};
use crate::report::{pooled, summarize, Case, Summary, SummaryOptions};

/// A case among the worst: its name, its lowest Dice and where it is, and its picture.
struct Worst {
    name: String,
    key: String,
    dice: f64,
    picture: Option<Result<(usize, String), String>>,
}

/// The values of one metric of one label or region over the cases, in case order.
fn values(cases: &[Case], key: &str, region: bool, column: usize) -> Vec<(String, f64)> {
    cases
        .iter()
        .filter_map(|c| {
            let o = c.result.as_ref().ok()?;
            let r = o
                .rows
                .iter()
                .find(|r| r.region.is_some() == region && r.key() == key)?;
            let v = r.values.get(column).copied().flatten()?;
            (!v.is_nan()).then(|| (c.name.clone(), v))
        })
        .collect()
}

/// A box (quartiles, median, whiskers to the extremes) with every case as a point, as SVG.
fn box_strip(values: &[(String, f64)], s: &Summary) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 110)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, v)| {
                (a.min(*v), b.max(*v))
            });
        let pad = ((hi - lo) * 0.05).max(1e-9);
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .x_label_area_size(22)
            .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(5)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        let (q1, med, q3) = (
            s.q1.unwrap_or(lo),
            s.median.unwrap_or(lo),
            s.q3.unwrap_or(hi),
        );
        let blue = RGBColor(40, 90, 200);
        chart
            .draw_series([Rectangle::new(
                [(q1, 0.3), (q3, 0.7)],
                blue.mix(0.25).filled(),
            )])
            .map_err(|e| e.to_string())?;
        for seg in [
            vec![(med, 0.3), (med, 0.7)],
            vec![(lo, 0.5), (q1, 0.5)],
            vec![(q3, 0.5), (hi, 0.5)],
        ] {
            chart
                .draw_series([PathElement::new(seg, blue.stroke_width(2))])
                .map_err(|e| e.to_string())?;
        }
        // Points spread vertically by case order (deterministic jitter).
        chart
            .draw_series(values.iter().enumerate().map(|(i, (_, v))| {
                let y = 0.15 + 0.7 * ((i * 37 % 17) as f64 / 16.0);
                Circle::new((*v, y), 3, RGBColor(200, 60, 30).mix(0.8).filled())
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

/// The overlay of a case's slice with the most errors, as a data URI.
fn picture(case: &Case, opts: &Options) -> Result<(usize, String), String> {
    let pair = eval::prepare(case.prediction.as_ref(), case.reference.as_ref(), opts)?;
    let rows = &case.result.as_ref().map_err(|e| e.clone())?.rows;
    let slice = crate::overlay::worst_slice(&pair, rows, opts)?;
    let png = crate::overlay::render(&pair, rows, opts, Some(slice))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    Ok((slice, format!("data:image/png;base64,{b64}")))
}

fn num(v: Option<f64>, p: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.p$}"))
}

/// The page for a run.
pub fn render(
    cases: &[Case],
    opts: &Options,
    summary: &SummaryOptions,
    precision: usize,
    worst: usize,
) -> Result<String, String> {
    let columns = eval::columns(opts);
    let p = precision;
    let stats = summarize(cases, &columns, summary);
    let pool = pooled(cases);
    // Worst cases: by the lowest Dice of any label or region.
    let dice_col = columns.iter().position(|c| c == "dice");
    let mut ranked: Vec<Worst> = cases
        .iter()
        .filter_map(|c| {
            let o = c.result.as_ref().ok()?;
            let k = dice_col?;
            let (key, dice) = o
                .rows
                .iter()
                .filter_map(|r| Some((r.key(), r.values.get(k).copied().flatten()?)))
                .filter(|(_, v)| !v.is_nan())
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            Some(Worst {
                name: c.name.clone(),
                key,
                dice,
                picture: None,
            })
        })
        .collect();
    ranked.sort_by(|a, b| a.dice.total_cmp(&b.dice));
    ranked.truncate(worst);
    for w in ranked.iter_mut() {
        if let Some(c) = cases.iter().find(|c| c.name == w.name) {
            w.picture = Some(picture(c, opts));
        }
    }
    let mut plots: Vec<(String, String, String)> = Vec::new();
    for s in &stats {
        let col = columns.iter().position(|c| c == &s.metric).unwrap_or(0);
        let v = values(cases, &s.key, s.region, col);
        if !v.is_empty() {
            plots.push((s.key.clone(), s.metric.clone(), box_strip(&v, s)?));
        }
    }
    let failed: Vec<&Case> = cases.iter().filter(|c| c.result.is_err()).collect();
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "dice evaluation report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "Evaluation report" }
                p class="meta" {
                    (cases.len()) " cases, " (failed.len()) " failed; metrics: " (columns.join(", "))
                    "; dice " (env!("CARGO_PKG_VERSION")) "."
                }
                h2 { "Summary over cases" }
                table id="summary" {
                    tr { th { "label" } th { "metric" } th { "mean" } th { "std" } th { "q1" }
                         th { "median" } th { "q3" }
                         @if summary.ci.is_some() { th { "CI" } }
                         th { "defined" } }
                    @for s in &stats {
                        tr {
                            td { (s.key) } td { (s.metric) }
                            td class="num" data-value=(s.mean.map_or(String::new(), |v| v.to_string())) { (num(s.mean, p)) }
                            td class="num" { (num(s.std, p)) } td class="num" { (num(s.q1, p)) }
                            td class="num" { (num(s.median, p)) } td class="num" { (num(s.q3, p)) }
                            @if summary.ci.is_some() {
                                td class="num" { (s.ci.map_or("–".into(), |(a, b)| format!("[{a:.p$}, {b:.p$}]"))) }
                            }
                            td class="num" { (s.defined) "/" (s.total) }
                        }
                    }
                }
                h2 { "Pooled Dice" }
                table id="pooled" {
                    tr { th { "label" } th { "Σ2TP / Σ(2TP+FP+FN)" } th { "cases" } }
                    @for x in &pool {
                        tr { td { (x.key) } td class="num" data-value=(x.dice.map_or(String::new(), |v| v.to_string())) { (num(x.dice, p)) } td class="num" { (x.cases) } }
                    }
                }
                h2 { "Distributions" }
                div class="plots" {
                    @for (key, metric, svg) in &plots {
                        figure { (PreEscaped(svg)) figcaption { (key) " · " (metric) } }
                    }
                }
                h2 { "Worst cases" }
                @if ranked.is_empty() { p { "No case has a Dice value to rank by." } }
                ol id="worst" {
                    @for w in &ranked {
                        li {
                            strong { (w.name) } " — lowest Dice " (format!("{:.p$}", w.dice)) " (" (w.key) ")"
                            @match &w.picture {
                                Some(Ok((slice, uri))) => {
                                    figure { img src=(uri) alt=(format!("overlay of {}", w.name));
                                        figcaption { "slice " (slice) ": green TP, red FP, blue FN, magenta wrong label, grey ignored" } }
                                }
                                Some(Err(e)) => { p class="err" { "no picture: " (e) } }
                                None => {}
                            }
                        }
                    }
                }
                @if !failed.is_empty() {
                    h2 { "Failed cases" }
                    ul { @for c in &failed { li { (c.name) ": " (c.result.as_ref().err().cloned().unwrap_or_default()) } } }
                }
            }
        }
    };
    Ok(page.into_string())
}

const CSS: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:3px 8px}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0 0 12px 0}figcaption{font-size:12px;color:#555}\
img{image-rendering:pixelated;width:256px;border:1px solid #999}.meta{color:#555}.err{color:#a00}";
