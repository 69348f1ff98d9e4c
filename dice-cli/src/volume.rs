//! A decoded image: its size along each axis (the fastest-varying axis first, as ITK and NIfTI
//! count them), its voxels in that order and in their stored type, the world geometry where the
//! format has one, and a NIfTI-style intensity scaling still to apply.

use std::fmt;

use crate::geometry::Geometry;

/// Voxels in their stored type.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// uint8 (also bool, bilevel and palette images).
    U8(Vec<u8>),
    /// uint16.
    U16(Vec<u16>),
    /// uint32.
    U32(Vec<u32>),
    /// int8, int16, int32 (the narrow ones widened to i32).
    I32(Vec<i32>),
    /// int64, uint64 (values above i64::MAX are rejected).
    I64(Vec<i64>),
    /// float32.
    F32(Vec<f32>),
    /// float64.
    F64(Vec<f64>),
}

/// Calls `$body` with `$v` bound to the vector inside any [`Data`].
#[macro_export]
#[doc(hidden)]
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::volume::Data::U8($v) => $body,
            $crate::volume::Data::U16($v) => $body,
            $crate::volume::Data::U32($v) => $body,
            $crate::volume::Data::I32($v) => $body,
            $crate::volume::Data::I64($v) => $body,
            $crate::volume::Data::F32($v) => $body,
            $crate::volume::Data::F64($v) => $body,
        }
    };
}

/// Calls `$body` with `$v` bound to the vector of an integer (label) [`Data`], or evaluates
/// `$float` for floating-point data.
#[macro_export]
#[doc(hidden)]
macro_rules! with_labels {
    ($data:expr, $v:ident => $body:expr, float => $float:expr) => {
        match $data {
            $crate::volume::Data::U8($v) => $body,
            $crate::volume::Data::U16($v) => $body,
            $crate::volume::Data::U32($v) => $body,
            $crate::volume::Data::I32($v) => $body,
            $crate::volume::Data::I64($v) => $body,
            $crate::volume::Data::F32(_) | $crate::volume::Data::F64(_) => $float,
        }
    };
}

impl Data {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    /// `true` when there is no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` for floating-point storage.
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

    /// Bytes per voxel.
    pub fn elem_size(&self) -> usize {
        match self {
            Data::U8(_) => 1,
            Data::U16(_) => 2,
            Data::U32(_) | Data::I32(_) | Data::F32(_) => 4,
            Data::I64(_) | Data::F64(_) => 8,
        }
    }

    /// Voxel `i` as f64 (for pictures and messages, not for counting).
    #[allow(clippy::unnecessary_cast)]
    pub fn get_f64(&self, i: usize) -> f64 {
        with_data!(self, v => v[i] as f64)
    }
}

/// How voxel positions are written in messages: the way the file's users index it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexStyle {
    /// `(x, y, z)`, the fastest axis first (NIfTI, NRRD, MetaImage, ITK; columns then rows).
    Voxel,
    /// `[i, j, k]` in NumPy's order for a C-ordered array: the slowest axis first.
    NumpyC,
}

/// An image or volume.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Sizes, the fastest-varying axis first (x, y, z, then time or other axes).
    pub dims: Vec<usize>,
    /// The voxels, x fastest.
    pub data: Data,
    /// Where the voxels are in the world, when the format says.
    pub geometry: Option<Geometry>,
    /// Why the file's geometry cannot be used (a sheared or non-rotation orientation, a
    /// voxel size out of range): then `geometry` is `None`, and comparing the file is an error
    /// unless the user compares arrays as stored (`--ignore-geometry`).
    pub geometry_error: Option<String>,
    /// A scaling `stored · slope + inter` (NIfTI `scl_slope`, `scl_inter`) still to apply.
    pub scale: Option<(f64, f64)>,
    /// How messages write a voxel's position.
    pub index_style: IndexStyle,
    /// What the reader noticed and the user should know (said, never silently guessed).
    pub notes: Vec<String>,
}

impl Volume {
    /// A volume without geometry, scaling or notes.
    pub fn new(dims: Vec<usize>, data: Data) -> Volume {
        Volume {
            dims,
            data,
            geometry: None,
            geometry_error: None,
            scale: None,
            index_style: IndexStyle::Voxel,
            notes: Vec::new(),
        }
    }

    /// Number of voxels the dims imply.
    pub fn voxels(&self) -> usize {
        self.dims.iter().product()
    }

    /// The sizes as the file's users write them (NumPy: slowest first).
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = match self.index_style {
            IndexStyle::Voxel => self.dims.iter().map(|d| d.to_string()).collect(),
            IndexStyle::NumpyC => self.dims.iter().rev().map(|d| d.to_string()).collect(),
        };
        match self.index_style {
            IndexStyle::Voxel => dims.join("×"),
            IndexStyle::NumpyC => format!("({})", dims.join(", ")),
        }
    }

    /// The position of voxel `flat` as its file's users write it: `(x, y, z)`, or a NumPy index.
    pub fn position(&self, flat: usize) -> String {
        position(&self.dims, self.index_style, flat)
    }

    /// A 2-D slice for pictures: `(width, height, offset)` of slice `index` along the slowest
    /// spatial axis of a 3-D volume (the middle one when `None`), or the image itself.
    pub fn slice_2d(&self, index: Option<usize>) -> Result<(usize, usize, usize), String> {
        let dims: Vec<usize> = self.dims.iter().copied().filter(|&d| d > 1).collect();
        let (w, h, depth) = match dims.len() {
            0 | 1 => return Err(format!("a {}-D image has no 2-D slice", dims.len())),
            2 => (dims[0], dims[1], 1),
            3 => (dims[0], dims[1], dims[2]),
            n => return Err(format!("a {n}-D image: pictures need 2-D or 3-D")),
        };
        let k = index.unwrap_or(depth / 2);
        if k >= depth {
            return Err(format!("--slice {k} is outside 0..{depth}"));
        }
        Ok((w, h, k * w * h))
    }
}

/// The position of voxel `flat` in an image of `dims` (fastest first), written in `style`.
pub fn position(dims: &[usize], style: IndexStyle, flat: usize) -> String {
    let mut rest = flat;
    let mut coords = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = d.max(1);
        coords.push(rest % d);
        rest /= d;
    }
    match style {
        IndexStyle::Voxel => {
            let c: Vec<String> = coords.iter().map(|c| c.to_string()).collect();
            format!("voxel ({})", c.join(", "))
        }
        IndexStyle::NumpyC => {
            let c: Vec<String> = coords.iter().rev().map(|c| c.to_string()).collect();
            format!("index [{}]", c.join(", "))
        }
    }
}

impl fmt::Display for Volume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.shape_text(), self.data.type_name())
    }
}
