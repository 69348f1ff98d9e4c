//! Where voxels are in the world, and when two files describe the same grid.
//!
//! Every reader turns its format's orientation into one voxel-to-world affine in millimetres,
//! in NIfTI's RAS+ frame (x to the right, y anterior, z superior): NIfTI's sform (when
//! `sform_code > 0`), else its qform (when `qform_code > 0`), else its pixdim; NRRD's
//! `space directions` and `space origin` in its `space`; MetaImage's `TransformMatrix`,
//! `Offset` and `ElementSpacing` (ITK's LPS+ frame, converted).
//!
//! Two grids are **the same image** when one is the other with its axes permuted and/or
//! reversed: the same mask saved by another tool in another storage order. [`axis_map`] finds
//! that permutation exactly (no resampling) and checks it: every corner voxel centre of the
//! reference must land within `tolerance` millimetres of the same corner of the reoriented
//! prediction. Anything else (another origin, a rotation, another spacing) is a different grid
//! and an error that prints both affines.

use crate::volume::Data;

/// The default of `--geometry-tolerance`: 0.01 mm. Far below any voxel size, far above what
/// `float32` header fields and qform/sform round-trips change (about 1e-5 mm over 300 mm).
pub const DEFAULT_TOLERANCE_MM: f64 = 0.01;

/// The largest |cos| of the angle between two voxel axes for them to count as perpendicular:
/// 1e-4 (0.006°), far above what `float32` header fields round an orthogonal affine to (about
/// 1e-7), far below any real shear. A sheared affine (an sform written by a registration tool
/// that does not orthogonalise, a hand-edited direction matrix) has no voxel spacing in the
/// sense surface distances need, and is refused.
pub const SHEAR_TOLERANCE: f64 = 1e-4;

/// The voxel sizes dice accepts, mm: a micrometre to a kilometre. Outside, a header (or
/// `--spacing`) is wrong, and distances and volumes computed from it would be too.
pub const SPACING_RANGE_MM: (f64, f64) = (1e-6, 1e6);

/// A voxel-to-world affine in millimetres, RAS+: `world = linear · (i, j, k) + translation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Rows of the 3×4 affine `[linear | translation]`.
    pub affine: [[f64; 4]; 3],
    /// Which header fields it came from (`"sform"`, `"qform"`, `"pixdim"`, …).
    pub source: &'static str,
}

impl Geometry {
    /// Axis-aligned voxels of `spacing` mm at the origin (formats with spacing only).
    pub fn diagonal(spacing: [f64; 3], source: &'static str) -> Geometry {
        let mut affine = [[0.0; 4]; 3];
        for (k, row) in affine.iter_mut().enumerate() {
            row[k] = spacing[k];
        }
        Geometry { affine, source }
    }

    /// From an affine in ITK's LPS+ frame (MetaImage, NRRD in LPS): x and y change sign.
    pub fn from_lps(mut affine: [[f64; 4]; 3], source: &'static str) -> Geometry {
        for row in affine.iter_mut().take(2) {
            for v in row.iter_mut() {
                *v = -*v;
            }
        }
        Geometry { affine, source }
    }

    /// The voxel size along each axis (the affine's column norms), mm.
    pub fn spacing(&self) -> [f64; 3] {
        let mut s = [0.0; 3];
        for (j, v) in s.iter_mut().enumerate() {
            *v = (0..3)
                .map(|i| self.affine[i][j] * self.affine[i][j])
                .sum::<f64>()
                .sqrt();
        }
        s
    }

    /// Why this affine cannot be used to measure (`None` when it can): non-finite entries, a
    /// singular linear part, voxel axes that are not perpendicular (beyond
    /// [`SHEAR_TOLERANCE`]), or a voxel size outside [`SPACING_RANGE_MM`].
    pub fn problem(&self) -> Option<String> {
        if !self.is_valid() {
            return Some(format!(
                "the {} affine is not finite and invertible: {}",
                self.source,
                self.text()
            ));
        }
        let cols: [[f64; 3]; 3] =
            std::array::from_fn(|j| std::array::from_fn(|i| self.affine[i][j]));
        let spacing = self.spacing();
        let (lo, hi) = SPACING_RANGE_MM;
        if let Some(j) = (0..3).find(|&j| !(lo..=hi).contains(&spacing[j])) {
            return Some(format!(
                "the {} gives voxel axis {j} a size of {} mm, outside [{lo:e}, {hi:e}] mm",
                self.source, spacing[j]
            ));
        }
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let dot: f64 = (0..3).map(|i| cols[a][i] * cols[b][i]).sum();
            let cos = dot / (spacing[a] * spacing[b]);
            if cos.abs() > SHEAR_TOLERANCE {
                return Some(format!(
                    "the {} is sheared: voxel axes {a} and {b} are {:.4}° apart, not 90° \
                     (|cos| {:.2e} > {SHEAR_TOLERANCE:e}), so voxels have no single size to \
                     measure distances and volumes with",
                    self.source,
                    cos.clamp(-1.0, 1.0).acos().to_degrees(),
                    cos.abs()
                ));
            }
        }
        None
    }

    /// `true` when every entry is finite and the linear part is invertible.
    pub fn is_valid(&self) -> bool {
        self.affine.iter().flatten().all(|v| v.is_finite()) && invert(&self.linear()).is_some()
    }

    fn linear(&self) -> [[f64; 3]; 3] {
        let a = &self.affine;
        [
            [a[0][0], a[0][1], a[0][2]],
            [a[1][0], a[1][1], a[1][2]],
            [a[2][0], a[2][1], a[2][2]],
        ]
    }

    fn world(&self, ijk: [f64; 3]) -> [f64; 3] {
        let a = &self.affine;
        let mut w = [0.0; 3];
        for (i, v) in w.iter_mut().enumerate() {
            *v = a[i][0] * ijk[0] + a[i][1] * ijk[1] + a[i][2] * ijk[2] + a[i][3];
        }
        w
    }

    /// The affine as text, numbers rounded to what a header field can mean
    /// (`[[2.2, 0, 0, -90], …]`, not `2.1999990940093994`).
    pub fn text(&self) -> String {
        let rows: Vec<String> = self
            .affine
            .iter()
            .map(|r| {
                let v: Vec<String> = r.iter().map(|&x| num(x)).collect();
                format!("[{}]", v.join(", "))
            })
            .collect();
        format!("[{}] ({})", rows.join(", "), self.source)
    }
}

/// A number as a header field can mean it: six significant digits, trailing zeros trimmed.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    // Six significant digits, and nothing below a micrometre (rounding noise of the affine).
    let digits = (5 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

/// Numbers as a list, rounded like [`num`].
pub fn nums(v: &[f64]) -> String {
    let v: Vec<String> = v.iter().map(|&x| num(x)).collect();
    format!("[{}]", v.join(", "))
}

fn invert(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let scale = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    if !det.is_finite() || det.abs() <= 1e-12 * scale.powi(3) || scale == 0.0 {
        return None;
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [
            c(1, 1, 2, 2) / det,
            -c(0, 1, 2, 2) / det,
            c(0, 1, 1, 2) / det,
        ],
        [
            -c(1, 0, 2, 2) / det,
            c(0, 0, 2, 2) / det,
            -c(0, 0, 1, 2) / det,
        ],
        [
            c(1, 0, 2, 1) / det,
            -c(0, 0, 2, 1) / det,
            c(0, 0, 1, 1) / det,
        ],
    ])
}

/// How the reference's voxel axes map onto the prediction's: reference axis `j` is prediction
/// axis `perm[j]`, run backwards when `flip[j]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisMap {
    /// Prediction axis of each reference axis.
    pub perm: [usize; 3],
    /// Whether that axis runs the other way.
    pub flip: [bool; 3],
}

impl AxisMap {
    /// The identity: the grids are stored alike.
    pub const IDENTITY: AxisMap = AxisMap {
        perm: [0, 1, 2],
        flip: [false; 3],
    };

    /// `true` for the identity.
    pub fn is_identity(&self) -> bool {
        *self == AxisMap::IDENTITY
    }

    /// In words, for the note: `reference (i, j, k) = prediction (i, -j, k)`-style.
    pub fn text(&self) -> String {
        let names = ["i", "j", "k"];
        let parts: Vec<String> = (0..3)
            .map(|j| {
                format!(
                    "{}{}",
                    if self.flip[j] { "reversed " } else { "" },
                    names[self.perm[j]]
                )
            })
            .collect();
        format!(
            "reference axes (i, j, k) are the prediction's ({})",
            parts.join(", ")
        )
    }
}

/// Sizes padded to three spatial axes.
pub fn spatial3(dims: &[usize]) -> [usize; 3] {
    let mut d = [1; 3];
    for (k, v) in d.iter_mut().enumerate() {
        if let Some(&x) = dims.get(k) {
            *v = x;
        }
    }
    d
}

/// The exact axis permutation and reversal that puts the prediction's grid on the
/// reference's, checked to `tolerance` mm at every corner voxel centre; or why there is none
/// (the error prints both affines).
pub fn axis_map(
    pred: &Geometry,
    pred_dims: [usize; 3],
    gt: &Geometry,
    gt_dims: [usize; 3],
    tolerance: f64,
) -> Result<AxisMap, String> {
    let both = || {
        format!(
            "\n  prediction {} voxels, affine {}\n  reference  {} voxels, affine {}",
            dims_text(pred_dims),
            pred.text(),
            dims_text(gt_dims),
            gt.text()
        )
    };
    let inv = invert(&pred.linear())
        .ok_or_else(|| format!("the prediction's affine is singular{}", both()))?;
    let lg = gt.linear();
    // M = Lp⁻¹ · Lg: reference voxel steps in prediction voxel steps.
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| inv[i][k] * lg[k][j]).sum();
        }
    }
    let mut map = AxisMap::IDENTITY;
    let mut used = [false; 3];
    for j in 0..3 {
        let i = (0..3)
            .max_by(|&a, &b| m[a][j].abs().total_cmp(&m[b][j].abs()))
            .unwrap_or(j);
        if used[i] {
            return Err(format!(
                "the grids are rotated against each other (not a permutation of axes){}",
                both()
            ));
        }
        used[i] = true;
        map.perm[j] = i;
        map.flip[j] = m[i][j] < 0.0 && gt_dims[j] > 1;
    }
    if (0..3).any(|j| pred_dims[map.perm[j]] != gt_dims[j]) {
        return Err(format!(
            "the grids have different sizes once axes are matched{}",
            both()
        ));
    }
    // Compare the corners' world positions.
    let mut worst = 0.0f64;
    for corner in 0..8 {
        let g: [f64; 3] = std::array::from_fn(|j| {
            if corner >> j & 1 == 1 {
                (gt_dims[j] - 1) as f64
            } else {
                0.0
            }
        });
        let mut p = [0.0; 3];
        for j in 0..3 {
            let d = (gt_dims[j] - 1) as f64;
            p[map.perm[j]] = if map.flip[j] { d - g[j] } else { g[j] };
        }
        let (a, b) = (gt.world(g), pred.world(p));
        let dist = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
        worst = worst.max(dist);
    }
    if worst.is_nan() || worst > tolerance {
        return Err(format!(
            "the grids differ: voxel centres are up to {} mm apart (--geometry-tolerance {} mm){}",
            num(worst),
            num(tolerance),
            both()
        ));
    }
    Ok(map)
}

fn dims_text(d: [usize; 3]) -> String {
    format!("{}×{}×{}", d[0], d[1], d[2])
}

/// The prediction's voxels rearranged onto the reference's grid (`dims`: the prediction's
/// sizes, all axes; axes past the third are kept as they are). Allocates the result fallibly.
pub fn reorient(data: &Data, dims: &[usize], map: AxisMap) -> Result<Data, String> {
    fn go<T: Copy + Default>(v: &[T], dims: &[usize], map: AxisMap) -> Result<Vec<T>, String> {
        let p = spatial3(dims);
        let block = p[0] * p[1] * p[2];
        let rest = v.len() / block.max(1);
        let stride = [1, p[0], p[0] * p[1]];
        let g: [usize; 3] = std::array::from_fn(|j| p[map.perm[j]]);
        // For reference axis j: the prediction stride it walks, and where it starts.
        let step: [isize; 3] = std::array::from_fn(|j| {
            let s = stride[map.perm[j]] as isize;
            if map.flip[j] {
                -s
            } else {
                s
            }
        });
        let start: isize = (0..3)
            .map(|j| {
                if map.flip[j] {
                    ((g[j] - 1) * stride[map.perm[j]]) as isize
                } else {
                    0
                }
            })
            .sum();
        let mut out = Vec::new();
        out.try_reserve_exact(v.len())
            .map_err(|_| format!("not enough memory to reorient {} voxels", v.len()))?;
        for r in 0..rest {
            let base = (r * block) as isize + start;
            for z in 0..g[2] {
                for y in 0..g[1] {
                    let row = base + z as isize * step[2] + y as isize * step[1];
                    out.extend((0..g[0]).map(|x| v[(row + x as isize * step[0]) as usize]));
                }
            }
        }
        Ok(out)
    }
    Ok(match data {
        Data::U8(v) => Data::U8(go(v, dims, map)?),
        Data::U16(v) => Data::U16(go(v, dims, map)?),
        Data::U32(v) => Data::U32(go(v, dims, map)?),
        Data::I32(v) => Data::I32(go(v, dims, map)?),
        Data::I64(v) => Data::I64(go(v, dims, map)?),
        Data::F32(v) => Data::F32(go(v, dims, map)?),
        Data::F64(v) => Data::F64(go(v, dims, map)?),
    })
}

/// The reoriented dims: the reference's spatial sizes, then the prediction's other axes.
pub fn reoriented_dims(dims: &[usize], map: AxisMap) -> Vec<usize> {
    let p = spatial3(dims);
    let mut out: Vec<usize> = (0..3).map(|j| p[map.perm[j]]).collect();
    out.extend(dims.iter().skip(3));
    out.truncate(dims.len().max(3));
    while out.len() > dims.len() && out.last() == Some(&1) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_header_fields() {
        assert_eq!(num(2.2f32 as f64), "2.2");
        assert_eq!(num(2.1999990940093994), "2.2");
        assert_eq!(num(2.19), "2.19");
        assert_eq!(num(-90.0), "-90");
        assert_eq!(num(0.9765625), "0.976562");
        assert_eq!(num(-1e-9), "0");
        assert_eq!(num(123456.7), "123457");
    }

    #[test]
    fn a_flipped_and_permuted_grid_maps_back_exactly() {
        let g = Geometry {
            affine: [
                [-2.0, 0.0, 0.0, 32.0],
                [0.0, 3.0, 0.0, -40.0],
                [0.0, 0.0, 1.5, -16.0],
            ],
            source: "test",
        };
        let dims = [4usize, 3, 2];
        // The same grid stored with x and y swapped and y reversed.
        let p = Geometry {
            affine: [
                [0.0, -2.0, 0.0, 32.0],
                [-3.0, 0.0, 0.0, -40.0 + 3.0 * 2.0],
                [0.0, 0.0, 1.5, -16.0],
            ],
            source: "test",
        };
        let pd = [3usize, 4, 2];
        let map = axis_map(&p, pd, &g, dims, 1e-6).unwrap();
        assert_eq!(map.perm, [1, 0, 2]);
        assert_eq!(map.flip, [false, true, false]);
        // Voxel (x, y, z) of the reference is voxel (2 - y, x, z) of the prediction.
        let pv: Vec<u32> = (0..24).collect();
        let Data::U32(r) = reorient(&Data::U32(pv.clone()), &pd, map).unwrap() else {
            unreachable!()
        };
        for z in 0..2 {
            for y in 0..3 {
                for x in 0..4 {
                    let want = pv[(z * 4 + x) * 3 + (2 - y)];
                    assert_eq!(r[(z * 3 + y) * 4 + x], want);
                }
            }
        }
        // A shifted origin is another grid.
        let mut shifted = g.clone();
        shifted.affine[0][3] += 0.5;
        assert!(axis_map(&shifted, dims, &g, dims, 0.01)
            .unwrap_err()
            .contains("0.5 mm"));
    }
}
