//! NRRD (`.nrrd` with attached data, `.nhdr` with a detached `data file`), as written by
//! Slicer, ITK/SimpleITK, pynrrd and teem: encodings `raw`, `gzip` and `ascii`; either byte
//! order; `byte skip` and `line skip`; geometry from `space directions` and `space origin` in
//! the named `space` (converted to RAS), or from `spacings` without orientation.

use std::io::{BufReader, Read};
use std::path::Path;

use super::{product, try_collect, Elem, Source, TRUNCATED};
use crate::geometry::Geometry;
use crate::volume::{Data, Volume};

fn elem(t: &str) -> Result<Elem, String> {
    Ok(match t {
        "signed char" | "int8" | "int8_t" => Elem::I8,
        "uchar" | "unsigned char" | "uint8" | "uint8_t" => Elem::U8,
        "short" | "short int" | "signed short" | "signed short int" | "int16" | "int16_t" => {
            Elem::I16
        }
        "ushort" | "unsigned short" | "unsigned short int" | "uint16" | "uint16_t" => Elem::U16,
        "int" | "signed int" | "int32" | "int32_t" => Elem::I32,
        "uint" | "unsigned int" | "uint32" | "uint32_t" => Elem::U32,
        "longlong"
        | "long long"
        | "long long int"
        | "signed long long"
        | "signed long long int"
        | "int64"
        | "int64_t" => Elem::I64,
        "ulonglong" | "unsigned long long" | "unsigned long long int" | "uint64" | "uint64_t" => {
            Elem::U64
        }
        "float" => Elem::F32,
        "double" => Elem::F64,
        "block" => return Err("NRRD type \"block\" is not supported".into()),
        other => return Err(format!("NRRD type {other:?} is not a known type")),
    })
}

/// `(1,0,0)` → `[1, 0, 0]`; `none` → `None`.
fn vector(s: &str) -> Result<Option<Vec<f64>>, String> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("malformed NRRD vector {s:?}"))?;
    inner
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("malformed NRRD vector {s:?}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Splits `(a,b,c) (d,e,f) none` into its items.
fn vectors(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with('(') {
            let end = rest.find(')').map_or(rest.len(), |i| i + 1);
            out.push(&rest[..end]);
            rest = rest[end..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// Sign changes that take a NRRD `space` to RAS; `None` for spaces dice cannot place.
fn to_ras(space: &str) -> Option<[f64; 3]> {
    Some(match space {
        "right-anterior-superior" | "RAS" | "right-anterior-superior-time" | "RAST" => {
            [1.0, 1.0, 1.0]
        }
        "left-anterior-superior" | "LAS" | "left-anterior-superior-time" | "LAST" => {
            [-1.0, 1.0, 1.0]
        }
        "left-posterior-superior" | "LPS" | "left-posterior-superior-time" | "LPST" => {
            [-1.0, -1.0, 1.0]
        }
        _ => return None,
    })
}

/// Reads a `.nrrd` or `.nhdr` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let (file, file_len) = super::open_with_len(path)?;
    let mut lines = super::HeaderLines::new(BufReader::new(file), "NRRD");
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut first = true;
    // A detached header may end without a blank line.
    while let Some(text) = lines.next_line()? {
        if first {
            if !text.starts_with("NRRD000") {
                return Err("not a NRRD file (no NRRD000x magic line)".into());
            }
            first = false;
            continue;
        }
        if text.is_empty() {
            break;
        }
        if text.starts_with('#') || text.contains(":=") {
            continue;
        }
        let (key, value) = text
            .split_once(": ")
            .ok_or_else(|| format!("malformed NRRD header line {text:?}"))?;
        fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    if first {
        return Err("not a NRRD file (empty)".into());
    }
    let get = |k: &str| -> Option<&str> {
        fields
            .iter()
            .find(|(f, _)| f == k || f.replace(' ', "") == k.replace(' ', ""))
            .map(|(_, v)| v.as_str())
    };
    let need = |k: &str| get(k).ok_or_else(|| format!("NRRD header has no \"{k}\" field"));
    let elem = elem(need("type")?)?;
    let dims = super::header_sizes(
        "NRRD",
        "dimension",
        need("dimension")?,
        16,
        "sizes",
        need("sizes")?,
    )?;
    let ndim = dims.len();
    let encoding = need("encoding")?.to_ascii_lowercase();
    let le = match get("endian") {
        Some("big") => false,
        Some("little") | None => true,
        Some(e) => return Err(format!("NRRD endian {e:?} is not little or big")),
    };
    let mut notes = Vec::new();

    // Geometry.
    let mut geometry = None;
    let mut spatial: Vec<usize> = (0..ndim).collect();
    if let Some(dirs) = get("space directions") {
        let items = vectors(dirs);
        if items.len() != ndim {
            return Err(format!(
                "NRRD has {} space directions for dimension {ndim}",
                items.len()
            ));
        }
        let vecs: Vec<Option<Vec<f64>>> =
            items.iter().map(|s| vector(s)).collect::<Result<_, _>>()?;
        spatial = (0..ndim).filter(|&k| vecs[k].is_some()).collect();
        if spatial.len() > 3 {
            return Err("NRRD with more than three spatial axes".into());
        }
        if spatial.iter().enumerate().any(|(i, &k)| i != k) {
            let list = (0..ndim).find(|k| !spatial.contains(k)).unwrap_or(0);
            if dims[list] > 1 {
                return Err(format!(
                    "NRRD axis {list} (size {}) is a non-spatial axis before the spatial ones \
                     (vector or multi-channel voxels): a segmentation has one value per voxel",
                    dims[list]
                ));
            }
        }
        let origin = match get("space origin") {
            Some(o) => vector(o)?.ok_or("NRRD space origin is \"none\"")?,
            None => vec![0.0; 3],
        };
        let space = get("space").unwrap_or("");
        let sign = match to_ras(space) {
            Some(s) => s,
            None => {
                notes.push(format!(
                    "NRRD space {space:?} is not an anatomical frame: coordinates are taken as RAS"
                ));
                [1.0; 3]
            }
        };
        let mut affine = [[0.0; 4]; 3];
        for (j, &k) in spatial.iter().enumerate() {
            let v = vecs[k].as_ref().ok_or("NRRD space direction missing")?;
            for i in 0..3 {
                affine[i][j] = v.get(i).copied().unwrap_or(0.0) * sign[i];
            }
        }
        if spatial.len() < 3 {
            // A 2-D image in 3-D space: a unit normal for the missing axis.
            affine[2][2] = 1.0;
        }
        for i in 0..3 {
            affine[i][3] = origin.get(i).copied().unwrap_or(0.0) * sign[i];
        }
        let g = Geometry {
            affine,
            source: "NRRD space directions",
        };
        if g.is_valid() {
            geometry = Some(g);
        } else {
            notes.push("NRRD space directions do not form a valid affine: no geometry".into());
        }
    } else if let Some(sp) = get("spacings") {
        let s: Vec<f64> = sp
            .split_whitespace()
            .map(|x| x.parse::<f64>().unwrap_or(f64::NAN))
            .collect();
        let s3: [f64; 3] = std::array::from_fn(|k| {
            s.get(k)
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or(1.0)
        });
        notes.push(
            "NRRD spacings without space directions: no orientation, axes taken as the world's"
                .into(),
        );
        geometry = Some(Geometry::diagonal(s3, "NRRD spacings"));
    }
    // Non-spatial axes go last, where the volume keeps them.
    let mut vdims: Vec<usize> = spatial.iter().map(|&k| dims[k]).collect();
    vdims.extend((0..ndim).filter(|k| !spatial.contains(k)).map(|k| dims[k]));
    let n = product(&dims)?;

    // Where the data is.
    let detached = get("data file").or_else(|| get("datafile"));
    let (data_path, offset_in_file) = match detached {
        Some(name) if name.starts_with("LIST") || name.split_whitespace().count() > 1 => {
            return Err(format!(
                "NRRD data file {name:?} (a list or pattern of files) is not supported"
            ))
        }
        Some(name) => (path.with_file_name(name), 0u64),
        None => (path.to_path_buf(), lines.consumed() as u64),
    };
    let gz = match encoding.as_str() {
        "raw" => false,
        "gzip" | "gz" => true,
        "ascii" | "text" | "txt" => {
            let text = if detached.is_some() {
                std::fs::read_to_string(&data_path)
                    .map_err(|e| format!("{}: cannot read: {e}", data_path.display()))?
            } else {
                let mut s = String::new();
                if file_len > (1u64 << 34) {
                    return Err("ascii NRRD larger than 16 GiB".into());
                }
                lines
                    .into_inner()
                    .read_to_string(&mut s)
                    .map_err(|_| "ascii NRRD data is not text".to_string())?;
                s
            };
            return ascii(&text, n, elem, vdims, geometry, notes);
        }
        "bzip2" | "bz2" => {
            return Err("NRRD encoding bzip2 is not supported (use raw or gzip)".into())
        }
        "hex" => return Err("NRRD encoding hex is not supported (use raw or gzip)".into()),
        other => return Err(format!("NRRD encoding {other:?} is not a known encoding")),
    };
    let mut src =
        Source::open(&data_path, gz).map_err(|e| format!("{}: {e}", data_path.display()))?;
    let mut to_skip = offset_in_file;
    let line_skip: u64 = get("line skip").and_then(|v| v.parse().ok()).unwrap_or(0);
    let byte_skip: i64 = get("byte skip").and_then(|v| v.parse().ok()).unwrap_or(0);
    if gz {
        // The header bytes of an attached file precede the compressed stream: skip them in
        // the file, then decompress the rest.
        let file = std::fs::File::open(&data_path).map_err(|e| format!("cannot open: {e}"))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let mut raw = BufReader::new(file);
        std::io::copy(&mut (&mut raw).take(to_skip), &mut std::io::sink())
            .map_err(|e| format!("cannot read: {e}"))?;
        src = Source {
            reader: Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(raw))),
            remaining: super::Avail::Deflate(len.saturating_sub(to_skip)),
        };
        to_skip = 0;
    }
    src.skip(to_skip)?;
    for _ in 0..line_skip {
        let mut b = [0u8; 1];
        loop {
            src.exact(&mut b)?;
            if b[0] == b'\n' {
                break;
            }
        }
    }
    if byte_skip == -1 {
        if gz {
            return Err("NRRD byte skip -1 with gzip encoding is not allowed".into());
        }
        let bytes = n as u64 * elem.size() as u64;
        let avail = src.remaining.raw().unwrap_or(0);
        if bytes > avail {
            return Err(TRUNCATED.into());
        }
        src.skip(avail - bytes)?;
    } else if byte_skip > 0 {
        src.skip(byte_skip as u64)?;
    } else if byte_skip < -1 {
        return Err(format!("NRRD byte skip {byte_skip} is not valid"));
    }
    let data = src.voxels(n, elem, le).map_err(|e| {
        if detached.is_some() {
            format!("{}: {e}", data_path.display())
        } else {
            e
        }
    })?;
    let extra = src.finish()?;
    if extra > 0 {
        notes.push(format!("{extra} bytes after the voxel data were ignored"));
    }
    let mut v = Volume::new(vdims, data);
    v.geometry = geometry;
    v.notes = notes;
    Ok(v)
}

fn ascii(
    text: &str,
    n: usize,
    elem: Elem,
    dims: Vec<usize>,
    geometry: Option<Geometry>,
    notes: Vec<String>,
) -> Result<Volume, String> {
    let words = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty());
    let values: Vec<f64> = try_collect(
        n.min(text.len() / 2 + 1),
        words.clone().map(|w| w.parse::<f64>().unwrap_or(f64::NAN)),
        "float64",
    )?;
    if values.len() < n {
        return Err(format!("{TRUNCATED} ({} of {n} values)", values.len()));
    }
    if let Some(i) = values.iter().position(|v| v.is_nan()) {
        let w = words.clone().nth(i).unwrap_or("");
        return Err(format!(
            "ascii NRRD value {w:?} (value {i}) is not a number"
        ));
    }
    let vals = &values[..n];
    let data = match elem {
        Elem::F32 => Data::F32(vals.iter().map(|&v| v as f32).collect()),
        Elem::F64 => Data::F64(vals.to_vec()),
        _ => {
            if let Some(i) = vals
                .iter()
                .position(|v| v.fract() != 0.0 || v.abs() > i64::MAX as f64)
            {
                return Err(format!(
                    "ascii NRRD value {} (value {i}) is not an integer of {}",
                    vals[i],
                    elem.name()
                ));
            }
            Data::I64(vals.iter().map(|&v| v as i64).collect())
        }
    };
    let mut v = Volume::new(dims, data);
    v.geometry = geometry;
    v.notes = notes;
    Ok(v)
}
