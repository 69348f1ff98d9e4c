//! A decoded image: its shape, voxel spacing when the format has one, and its voxels in the
//! file's order (NIfTI: x fastest; NumPy/PNG/TIFF: row-major), kept in their own type.

use std::fmt;

/// Voxels in their stored type.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// uint8 (also bool and palette indices).
    U8(Vec<u8>),
    /// uint16.
    U16(Vec<u16>),
    /// uint32.
    U32(Vec<u32>),
    /// int8, int16, int32 (widened to i32).
    I32(Vec<i32>),
    /// int64, uint64 (values above i64::MAX are rejected).
    I64(Vec<i64>),
    /// float32.
    F32(Vec<f32>),
    /// float64 (and scaled NIfTI data).
    F64(Vec<f64>),
}

impl Data {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        match self {
            Data::U8(v) => v.len(),
            Data::U16(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
        }
    }

    /// `true` when there is no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` for floating-point voxels (probability maps).
    pub fn is_float(&self) -> bool {
        matches!(self, Data::F32(_) | Data::F64(_))
    }

    /// The type's name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Data::U8(_) => "uint8",
            Data::U16(_) => "uint16",
            Data::U32(_) => "uint32",
            Data::I32(_) => "int32",
            Data::I64(_) => "int64",
            Data::F32(_) => "float32",
            Data::F64(_) => "float64",
        }
    }

    /// Voxel `i` as f64.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::U8(v) => v[i] as f64,
            Data::U16(v) => v[i] as f64,
            Data::U32(v) => v[i] as f64,
            Data::I32(v) => v[i] as f64,
            Data::I64(v) => v[i] as f64,
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
        }
    }
}

/// An image or volume.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Sizes, fastest-varying first for NIfTI (x, y, z), row-major order otherwise.
    pub shape: Vec<usize>,
    /// Voxel spacing (mm) when the format stores it.
    pub spacing: Option<Vec<f64>>,
    /// The voxels.
    pub data: Data,
    /// Whether `shape[0]` varies fastest (NIfTI) or slowest (NumPy, PNG, TIFF).
    pub fastest_first: bool,
}

impl Volume {
    /// Number of voxels the shape implies.
    pub fn voxels(&self) -> usize {
        self.shape.iter().product()
    }

    /// A 2-D slice for pictures: `(width, height, values)` of the slice `index` along the
    /// slowest axis of a 3-D volume (the middle one when `None`), or the image itself.
    pub fn slice_2d(&self, index: Option<usize>) -> Result<(usize, usize, usize), String> {
        let dims: Vec<usize> = self.shape.iter().copied().filter(|&d| d > 1).collect();
        let (w, h, depth) = match (dims.len(), self.fastest_first) {
            (0 | 1, _) => return Err(format!("a {}-D image has no 2-D slice", dims.len())),
            (2, true) => (dims[0], dims[1], 1),
            (2, false) => (dims[1], dims[0], 1),
            (3, true) => (dims[0], dims[1], dims[2]),
            (3, false) => (dims[2], dims[1], dims[0]),
            (n, _) => return Err(format!("a {n}-D image: pictures need 2-D or 3-D")),
        };
        let k = index.unwrap_or(depth / 2);
        if k >= depth {
            return Err(format!("slice {k} is outside 0..{depth}"));
        }
        Ok((w, h, k * w * h))
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.shape, self.data.type_name())
    }
}
