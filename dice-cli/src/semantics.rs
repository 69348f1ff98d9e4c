//! What a file's numbers mean: a label map or a probability map. Never guessed silently.
//!
//! | stored values | read as |
//! | --- | --- |
//! | integers, no scaling | a label map |
//! | floats (or scaled integers) that are all integers | a label map (a note says so) |
//! | floats (or scaled integers) all within `[0, 1]`, give or take [`PROBABILITY_SLACK`] | a probability map |
//! | anything else (a value like 2.5 or −0.3, NaN, ±∞) | an error naming the value and voxel |
//!
//! A `uint8` probability map saved with `scl_slope = 1/255` reaches `255 · (1/255 as f32) =
//! 1.0000000591`: values within a few `float32` ulps outside `[0, 1]` are clamped, not refused.
//! `--as labels|probabilities` (and `--pred-as`, `--ref-as`) overrides the guess, and then the
//! values must fit the kind asked for.

use crate::volume::{position, Data, IndexStyle, Volume};

/// How far outside `[0, 1]` a probability may stray from rounding: 4 `float32` ulps at 1.
pub const PROBABILITY_SLACK: f64 = 4.0 * f32::EPSILON as f64;

/// What the user says a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Kind {
    /// Decide from the values (the table above).
    #[default]
    Auto,
    /// A label map: every value an integer.
    Labels,
    /// A probability map: every value in [0, 1].
    Probabilities,
}

/// Probabilities in `[0, 1]`, in the precision they came in.
#[derive(Clone, Debug, PartialEq)]
pub enum Probs {
    /// float32 (also scaled or integer maps).
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
}

impl Probs {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        match self {
            Probs::F32(v) => v.len(),
            Probs::F64(v) => v.len(),
        }
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Voxel `i`.
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Probs::F32(v) => v[i] as f64,
            Probs::F64(v) => v[i],
        }
    }
}

/// A file's values as what they mean.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Integer labels (`U8`, `U16`, `U32`, `I32` or `I64` data).
    Labels(Data),
    /// Probabilities in `[0, 1]`.
    Probabilities(Probs),
}

/// Statistics of a scan over values as numbers.
struct Scan {
    /// First voxel that is NaN or ±∞.
    non_finite: Option<usize>,
    /// First voxel that is not an integer.
    non_integer: Option<usize>,
    /// First voxel outside `[0, 1]` (with slack).
    outside_unit: Option<usize>,
    min: f64,
    max: f64,
}

fn scan(n: usize, value: impl Fn(usize) -> f64) -> Scan {
    let mut s = Scan {
        non_finite: None,
        non_integer: None,
        outside_unit: None,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
    for i in 0..n {
        let v = value(i);
        if !v.is_finite() {
            s.non_finite.get_or_insert(i);
            continue;
        }
        if s.non_integer.is_none() && v.fract() != 0.0 {
            s.non_integer = Some(i);
        }
        if s.outside_unit.is_none() && !(-PROBABILITY_SLACK..=1.0 + PROBABILITY_SLACK).contains(&v)
        {
            s.outside_unit = Some(i);
        }
        s.min = s.min.min(v);
        s.max = s.max.max(v);
    }
    s
}

/// Clamps a value within the slack of `[0, 1]` into it.
fn clamp_unit(v: f64) -> f64 {
    v.clamp(0.0, 1.0)
}

/// Integer labels from integral values, in the narrowest type that holds `[min, max]`.
fn to_labels(n: usize, min: f64, max: f64, value: impl Fn(usize) -> f64) -> Result<Data, String> {
    fn make<T>(n: usize, f: impl Fn(usize) -> T, name: &str) -> Result<Vec<T>, String> {
        crate::formats::try_collect(n, (0..n).map(f), name)
    }
    Ok(if min >= 0.0 && max <= u8::MAX as f64 {
        Data::U8(make(n, |i| value(i) as u8, "uint8")?)
    } else if min >= 0.0 && max <= u16::MAX as f64 {
        Data::U16(make(n, |i| value(i) as u16, "uint16")?)
    } else if min >= 0.0 && max <= u32::MAX as f64 {
        Data::U32(make(n, |i| value(i) as u32, "uint32")?)
    } else if min >= i64::MIN as f64 && max < i64::MAX as f64 {
        Data::I64(make(n, |i| value(i) as i64, "int64")?)
    } else {
        return Err(format!(
            "label values up to {max} do not fit in 64-bit integers"
        ));
    })
}

/// What `vol`'s values mean (`role` is "prediction" or "reference" for messages). `prefer_probs`
/// reads an ambiguous map (0/1 floats) as probabilities (for `--soft`). Consumes the volume's
/// data; notes are appended to `notes`.
pub fn interpret(
    data: Data,
    scale: Option<(f64, f64)>,
    dims: &[usize],
    style: IndexStyle,
    kind: Kind,
    prefer_probs: bool,
    notes: &mut Vec<String>,
) -> Result<Values, String> {
    let at = |i: usize| position(dims, style, i);
    let flag = "--as (or --pred-as / --ref-as)";
    // Integer storage without scaling: labels (or, when asked, 0/1 probabilities).
    if !data.is_float() && scale.is_none() {
        return match kind {
            Kind::Auto | Kind::Labels => Ok(Values::Labels(data)),
            Kind::Probabilities => {
                let n = data.len();
                if let Some(i) = (0..n).find(|&i| data.get_f64(i) > 1.0 || data.get_f64(i) < 0.0) {
                    return Err(format!(
                        "value {} at {} is not a probability (integer storage holds only 0 and 1 \
                         as probabilities)",
                        data.get_f64(i),
                        at(i)
                    ));
                }
                let v = crate::formats::try_collect(
                    n,
                    (0..n).map(|i| data.get_f64(i) as f32),
                    "float32",
                )?;
                Ok(Values::Probabilities(Probs::F32(v)))
            }
        };
    }
    let (slope, inter) = scale.unwrap_or((1.0, 0.0));
    let n = data.len();
    let value = |i: usize| data.get_f64(i) * slope + inter;
    let s = match &data {
        // Fast paths for the common unscaled float maps.
        Data::F32(v) if scale.is_none() => scan(n, |i| v[i] as f64),
        Data::F64(v) if scale.is_none() => scan(n, |i| v[i]),
        _ => scan(n, value),
    };
    if let Some(i) = s.non_finite {
        return Err(format!(
            "{} at {}: neither a label nor a probability",
            value(i),
            at(i)
        ));
    }
    let scaled = scale
        .map(|(a, b)| {
            format!(
                " (stored {} with scl_slope {a} and scl_inter {b})",
                data.type_name()
            )
        })
        .unwrap_or_default();
    let as_labels = |notes: &mut Vec<String>| -> Result<Values, String> {
        notes.push(format!(
            "{} values that are all integers{scaled}: read as a label map",
            if scale.is_some() {
                "scaled"
            } else {
                data.type_name()
            }
        ));
        Ok(Values::Labels(to_labels(n, s.min, s.max, value)?))
    };
    let as_probs = |data: Data, notes: &mut Vec<String>| -> Result<Values, String> {
        if scale.is_some() {
            notes.push(format!(
                "values in [0, 1]{scaled}: read as a probability map"
            ));
        }
        Ok(Values::Probabilities(match data {
            Data::F64(mut v) if scale.is_none() => {
                v.iter_mut().for_each(|x| *x = clamp_unit(*x));
                Probs::F64(v)
            }
            Data::F32(mut v) if scale.is_none() => {
                v.iter_mut().for_each(|x| *x = x.clamp(0.0, 1.0));
                Probs::F32(v)
            }
            d => {
                let f = |i: usize| clamp_unit(d.get_f64(i) * slope + inter) as f32;
                Probs::F32(crate::formats::try_collect(n, (0..n).map(f), "float32")?)
            }
        }))
    };
    match kind {
        Kind::Labels => match s.non_integer {
            Some(i) => Err(format!(
                "value {} at {} is not an integer, so this is not a label map (it was read as \
                 labels because of --as labels)",
                value(i),
                at(i)
            )),
            None => as_labels(notes),
        },
        Kind::Probabilities => match s.outside_unit {
            Some(i) => Err(format!(
                "value {} at {} is outside [0, 1], so this is not a probability map (it was read \
                 as probabilities because of --as probabilities)",
                value(i),
                at(i)
            )),
            None => as_probs(data, notes),
        },
        Kind::Auto => {
            if prefer_probs && s.outside_unit.is_none() {
                as_probs(data, notes)
            } else if s.non_integer.is_none() {
                as_labels(notes)
            } else if s.outside_unit.is_none() {
                as_probs(data, notes)
            } else {
                let i = s.outside_unit.unwrap_or(0);
                Err(format!(
                    "value {} at {} is neither a label (an integer) nor a probability (in [0, 1]): \
                     this looks like an intensity image or unnormalised scores, not a segmentation \
                     (values range over [{}, {}]{scaled}); if it is one, say how to read it with {flag}",
                    value(i),
                    at(i),
                    s.min,
                    s.max
                ))
            }
        }
    }
}

/// [`interpret`] over a whole volume, returning the volume's other parts.
pub fn interpret_volume(
    vol: Volume,
    kind: Kind,
    prefer_probs: bool,
) -> Result<(Values, Volume), String> {
    let Volume {
        dims,
        data,
        geometry,
        geometry_error,
        scale,
        index_style,
        mut notes,
    } = vol;
    let values = interpret(
        data,
        scale,
        &dims,
        index_style,
        kind,
        prefer_probs,
        &mut notes,
    )?;
    Ok((
        values,
        Volume {
            dims,
            data: Data::U8(Vec::new()),
            geometry,
            geometry_error,
            scale: None,
            index_style,
            notes,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: Data, scale: Option<(f64, f64)>, kind: Kind) -> Result<Values, String> {
        let n = data.len();
        interpret(
            data,
            scale,
            &[n],
            IndexStyle::Voxel,
            kind,
            false,
            &mut Vec::new(),
        )
    }

    #[test]
    fn the_table_of_the_module_doc() {
        assert_eq!(
            run(Data::F32(vec![0.0, 2.0, 3.0]), None, Kind::Auto).unwrap(),
            Values::Labels(Data::U8(vec![0, 2, 3]))
        );
        // uint8 with slope 1/255 reaches 1.0000000591 at 255: a probability map.
        let slope = (1.0f32 / 255.0) as f64;
        let Values::Probabilities(Probs::F32(p)) =
            run(Data::U8(vec![0, 128, 255]), Some((slope, 0.0)), Kind::Auto).unwrap()
        else {
            panic!()
        };
        assert_eq!(p[2], 1.0);
        // Scaled integers that stay integers are labels.
        assert_eq!(
            run(Data::U8(vec![0, 1, 2]), Some((2.0, 1.0)), Kind::Auto).unwrap(),
            Values::Labels(Data::U8(vec![1, 3, 5]))
        );
        let e = run(Data::F32(vec![0.5, 2.5]), None, Kind::Auto).unwrap_err();
        assert!(
            e.contains("2.5") && e.contains("voxel (1)") && e.contains("--as"),
            "{e}"
        );
        assert!(run(Data::F32(vec![0.5, f32::NAN]), None, Kind::Auto)
            .unwrap_err()
            .contains("NaN"));
        assert!(run(Data::F32(vec![0.5]), None, Kind::Labels).is_err());
        assert!(run(Data::F32(vec![3.0]), None, Kind::Probabilities).is_err());
        assert_eq!(
            run(Data::U8(vec![0, 1]), None, Kind::Probabilities).unwrap(),
            Values::Probabilities(Probs::F32(vec![0.0, 1.0]))
        );
        assert_eq!(
            run(Data::F32(vec![-1.0, 70000.0]), None, Kind::Auto).unwrap(),
            Values::Labels(Data::I64(vec![-1, 70000]))
        );
    }
}
