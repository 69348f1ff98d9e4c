//! NRRD (`.nrrd` with attached data, `.nhdr` with a detached `data file`), as written by
//! Slicer, ITK/SimpleITK, pynrrd and teem: encodings `raw`, `gzip` and `ascii`; either byte
//! order; `byte skip` and `line skip`; geometry from `space directions` and `space origin` in
//! the named `space` (converted to RAS), or from `spacings` without orientation.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::{input, product, try_collect, Access, Elem, Source, TRUNCATED};
use crate::geometry::Geometry;
use crate::names::ShowPath;
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

/// Reads a `.nrrd` or `.nhdr` file; a detached data file is opened under `access`.
pub fn read(path: &Path, access: Access) -> Result<Volume, String> {
    let (file, _) = super::input::open_regular(path)?;
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
    let header_len = lines.consumed() as u64;
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

    // Where the data is: the header's own file after the header, or a detached data file
    // under the data-file policy (input.rs).
    let detached = get("data file").or_else(|| get("datafile"));
    let (file, len, data_path, header_bytes) = match detached {
        Some(name) if name.starts_with("LIST") || name.split_whitespace().count() > 1 => {
            return Err(format!(
                "NRRD data file {name:?} (a list or pattern of files) is not supported"
            ))
        }
        Some(name) => {
            let (f, len, p) = input::open_data(path, "NRRD \"data file\"", name, access)?;
            (f, len, Some(p), 0u64)
        }
        None => {
            drop(lines);
            let (f, len) = super::input::open_regular(path)?;
            (f, len, None, header_len)
        }
    };
    // Errors about the data name the data file, never quote its bytes.
    let at = |e: String| match &data_path {
        Some(p) => format!("{}: {e}", p.shown()),
        None => e,
    };
    let gz = match encoding.as_str() {
        "raw" => false,
        "gzip" | "gz" => true,
        "ascii" | "text" | "txt" => false,
        "bzip2" | "bz2" => {
            return Err("NRRD encoding bzip2 is not supported (use raw or gzip)".into())
        }
        "hex" => return Err("NRRD encoding hex is not supported (use raw or gzip)".into()),
        other => return Err(format!("NRRD encoding {other:?} is not a known encoding")),
    };
    let ascii_encoding = matches!(encoding.as_str(), "ascii" | "text" | "txt");
    let line_skip: u64 = match get("line skip").or_else(|| get("lineskip")) {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("NRRD line skip {v:?} is not a count of lines"))?,
    };
    let byte_skip: i64 = match get("byte skip").or_else(|| get("byteskip")) {
        None => 0,
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("NRRD byte skip {v:?} is not a number of bytes"))?,
    };
    // The header of an attached file, then `line skip` lines, precede the data in the file
    // itself (before any decompression, as teem reads them).
    let mut raw = BufReader::with_capacity(1 << 16, file);
    std::io::copy(&mut (&mut raw).take(header_bytes), &mut std::io::sink())
        .map_err(|e| at(super::read_error(&e)))?;
    let mut consumed = header_bytes;
    consumed += skip_lines(&mut raw, line_skip).map_err(at)?;
    if ascii_encoding {
        if byte_skip != 0 {
            return Err("NRRD byte skip with ascii encoding is not allowed".into());
        }
        return ascii(
            &mut raw,
            len.saturating_sub(consumed),
            n,
            elem,
            vdims,
            geometry,
            notes,
        )
        .map_err(at);
    }
    let left = len.saturating_sub(consumed);
    let mut src = if gz {
        Source {
            reader: Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(raw),
            )),
            remaining: super::Avail::Deflate(left),
        }
    } else {
        Source {
            reader: Box::new(raw),
            remaining: super::Avail::Raw(left),
        }
    };
    if byte_skip == -1 {
        if gz {
            return Err("NRRD byte skip -1 with gzip encoding is not allowed".into());
        }
        let bytes = (n as u64).saturating_mul(elem.size() as u64);
        let avail = src.remaining.raw().unwrap_or(0);
        if bytes > avail {
            return Err(at(TRUNCATED.into()));
        }
        src.skip(avail - bytes).map_err(at)?;
    } else if byte_skip > 0 {
        src.skip(byte_skip as u64).map_err(at)?;
    } else if byte_skip < -1 {
        return Err(format!("NRRD byte skip {byte_skip} is not valid"));
    }
    let data = src.voxels(n, elem, le).map_err(at)?;
    let extra = src.finish().map_err(at)?;
    if extra > 0 {
        notes.push(format!("{extra} bytes after the voxel data were ignored"));
    }
    let mut v = Volume::new(vdims, data);
    v.geometry = geometry;
    v.notes = notes;
    Ok(v)
}

/// The most bytes `line skip` may pass over: real files skip a few lines of another header.
const MAX_LINE_SKIP_BYTES: u64 = 64 << 20;

/// Skips `lines` lines of the raw file; returns the bytes skipped.
fn skip_lines(r: &mut impl std::io::BufRead, lines: u64) -> Result<u64, String> {
    let mut skipped = 0u64;
    let mut sink = Vec::new();
    for _ in 0..lines {
        sink.clear();
        let budget = MAX_LINE_SKIP_BYTES - skipped;
        let k = r
            .take(budget + 1)
            .read_until(b'\n', &mut sink)
            .map_err(|e| super::read_error(&e))? as u64;
        if k == 0 {
            return Err(format!("{TRUNCATED} (within its line skip)"));
        }
        skipped += k;
        if skipped > MAX_LINE_SKIP_BYTES {
            return Err("NRRD line skip passes over more than 64 MiB".into());
        }
    }
    Ok(skipped)
}

/// The most bytes an ascii value may take, with its separators: `-9223372036854775808` is 20
/// characters, a float written by `%.17g` 24; generous for padding.
const ASCII_BYTES_PER_VALUE: u64 = 64;

/// `n` ascii values of `elem` from `r` (whose file has `avail` bytes left; 0 when the size is
/// unknown), read within a budget derived from `n` so that an endless or huge source stops in
/// bounded time and memory. Integers are parsed as integers (exact to 64 bits) and must fit the
/// declared type; errors say which value, never what its text was (the data file's bytes are
/// not quoted).
fn ascii(
    r: &mut dyn Read,
    avail: u64,
    n: usize,
    elem: Elem,
    dims: Vec<usize>,
    geometry: Option<Geometry>,
    notes: Vec<String>,
) -> Result<Volume, String> {
    let budget = (n as u64)
        .saturating_mul(ASCII_BYTES_PER_VALUE)
        .saturating_add(1 << 20);
    let mut text: Vec<u8> = Vec::new();
    let first = if avail > 0 {
        avail.min(budget)
    } else {
        1 << 16
    };
    text.try_reserve_exact(usize::try_from(first).unwrap_or(usize::MAX))
        .map_err(|_| format!("not enough memory for {first} bytes of ascii NRRD data"))?;
    r.take(budget + 1)
        .read_to_end(&mut text)
        .map_err(|e| super::read_error(&e))?;
    if text.len() as u64 > budget {
        return Err(format!(
            "ascii NRRD data longer than {budget} bytes for {n} values: refused (at most \
             {ASCII_BYTES_PER_VALUE} bytes a value)"
        ));
    }
    let words = text
        .split(|&c| c.is_ascii_whitespace() || c == b',')
        .filter(|w| !w.is_empty());
    let data = match elem {
        Elem::F32 | Elem::F64 => {
            let v = values(words, n, "float64", |i, w| {
                std::str::from_utf8(w)
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .ok_or_else(|| {
                        format!("ascii NRRD value {i} (counting from 0) is not a number")
                    })
            })?;
            if elem == Elem::F32 {
                Data::F32(try_collect(n, v.iter().map(|&x| x as f32), "float32")?)
            } else {
                Data::F64(v)
            }
        }
        _ => {
            let (lo, hi) = int_range(elem);
            Data::I64(values(words, n, "int64", |i, w| {
                let x = parse_int(w).ok_or_else(|| {
                    format!(
                        "ascii NRRD value {i} (counting from 0) is not an integer of {} (nor a \
                         float that is one exactly)",
                        elem.name()
                    )
                })?;
                if !(lo..=hi).contains(&x) {
                    return Err(format!(
                        "ascii NRRD value {i} (counting from 0) lies outside [{lo}, {hi}], the \
                         values {} holds{}",
                        elem.name(),
                        if hi == i64::MAX as i128 && lo == 0 {
                            " as labels (dice keeps labels as signed 64-bit integers)"
                        } else {
                            ""
                        }
                    ));
                }
                Ok(x as i64)
            })?)
        }
    };
    let mut v = Volume::new(dims, data);
    v.geometry = geometry;
    v.notes = notes;
    Ok(v)
}

/// The first `n` of `words`, each parsed by `parse` (given its index), into a vector reserved
/// fallibly (`what` names its element type for the error); fewer words is a truncation error.
fn values<'w, T>(
    mut words: impl Iterator<Item = &'w [u8]>,
    n: usize,
    what: &str,
    parse: impl Fn(usize, &[u8]) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| super::no_memory(n, what))?;
    for i in 0..n {
        let w = words
            .next()
            .ok_or_else(|| format!("{TRUNCATED} ({i} of {n} values)"))?;
        v.push(parse(i, w)?);
    }
    Ok(v)
}

/// The values a declared integer type holds, capped at the labels dice keeps (`i64`).
fn int_range(elem: Elem) -> (i128, i128) {
    match elem {
        Elem::U8 => (0, u8::MAX as i128),
        Elem::I8 => (i8::MIN as i128, i8::MAX as i128),
        Elem::U16 => (0, u16::MAX as i128),
        Elem::I16 => (i16::MIN as i128, i16::MAX as i128),
        Elem::U32 => (0, u32::MAX as i128),
        Elem::I32 => (i32::MIN as i128, i32::MAX as i128),
        Elem::U64 => (0, i64::MAX as i128),
        _ => (i64::MIN as i128, i64::MAX as i128),
    }
}

/// An ascii integer exactly (`+7`, `-12`, `00042`, up to 64-bit magnitudes), or a float spelling
/// of an integer that a double holds exactly (`3.0`, `1e3`, up to 2⁵³).
fn parse_int(w: &[u8]) -> Option<i128> {
    let t = std::str::from_utf8(w).ok()?;
    if let Ok(x) = t.parse::<i128>() {
        return Some(x);
    }
    let f = t.parse::<f64>().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= (1u64 << 53) as f64).then_some(f as i128)
}
