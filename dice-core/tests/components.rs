//! Connected components against a brute-force flood fill on random volumes, for every
//! connectivity, and the numbering against scipy's and cc3d's (fixtures).

use dice_core::components::{label, scratch_len, Connectivity};
use proptest::prelude::*;

/// Flood fill from every unlabelled foreground voxel in raster order: components numbered in
/// the raster order of their first voxel, by construction.
fn flood(mask: &[u8], dims: [usize; 3], c: Connectivity) -> (Vec<u32>, u32) {
    let [nx, ny, nz] = dims;
    let mut out = vec![0u32; mask.len()];
    let mut count = 0;
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] == 0 || out[start] != 0 {
            continue;
        }
        count += 1;
        out[start] = count;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
            for dz in -1isize..=1 {
                for dy in -1isize..=1 {
                    for dx in -1isize..=1 {
                        let nonzero = [dx, dy, dz].iter().filter(|v| **v != 0).count();
                        let ok = match c {
                            Connectivity::Four => dz == 0 && nonzero == 1,
                            Connectivity::Eight => dz == 0 && nonzero >= 1,
                            Connectivity::Six => nonzero == 1,
                            Connectivity::Eighteen => (1..=2).contains(&nonzero),
                            Connectivity::TwentySix => nonzero >= 1,
                        };
                        let (xx, yy, zz) = (x as isize + dx, y as isize + dy, z as isize + dz);
                        if !ok || xx < 0 || yy < 0 || zz < 0 {
                            continue;
                        }
                        let (xx, yy, zz) = (xx as usize, yy as usize, zz as usize);
                        if xx >= nx || yy >= ny || zz >= nz {
                            continue;
                        }
                        let j = xx + nx * (yy + ny * zz);
                        if mask[j] != 0 && out[j] == 0 {
                            out[j] = count;
                            stack.push(j);
                        }
                    }
                }
            }
        }
    }
    (out, count)
}

fn ours(mask: &[u8], dims: [usize; 3], c: Connectivity) -> (Vec<u32>, u32) {
    let mut out = vec![7u32; mask.len()];
    let mut scratch = vec![0u32; scratch_len(dims)];
    let n = label(mask, dims, c, &mut out, &mut scratch).unwrap();
    (out, n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn equals_flood_fill(
        dims in (1usize..12, 1usize..10, 1usize..8),
        density in 0.05f64..0.9,
        seed in any::<u64>(),
        conn in 0u8..5,
    ) {
        let (nx, ny, mut nz) = dims;
        let c = [Connectivity::Four, Connectivity::Eight, Connectivity::Six, Connectivity::Eighteen, Connectivity::TwentySix][conn as usize];
        if matches!(c, Connectivity::Four | Connectivity::Eight) {
            nz = 1;
        }
        let mut s = seed | 1;
        let mask: Vec<u8> = (0..nx * ny * nz)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                u8::from(((s >> 11) as f64 / (1u64 << 53) as f64) < density)
            })
            .collect();
        let dims = [nx, ny, nz];
        prop_assert_eq!(ours(&mask, dims, c), flood(&mask, dims, c));
    }
}

/// The worst case for the scratch: a 3-D checkerboard under 6-connectivity, every foreground
/// voxel its own component.
#[test]
fn checkerboard_fills_the_scratch_bound() {
    let dims = [9, 7, 5];
    let mask: Vec<u8> = (0..9 * 7 * 5)
        .map(|i| {
            let (x, y, z) = (i % 9, (i / 9) % 7, i / 63);
            u8::from((x + y + z) % 2 == 0)
        })
        .collect();
    let (out, n) = ours(&mask, dims, Connectivity::Six);
    assert_eq!(n as usize, mask.iter().filter(|&&m| m != 0).count());
    assert_eq!(out, flood(&mask, dims, Connectivity::Six).0);
    let (_, n26) = ours(&mask, dims, Connectivity::TwentySix);
    assert_eq!(n26, 1);
}

#[test]
fn refusals() {
    let mut out = vec![0u32; 8];
    let mut s = vec![0u32; scratch_len([2, 2, 2])];
    assert!(label(&[1; 8], [2, 2, 2], Connectivity::Four, &mut out, &mut s).is_err());
    assert!(label(&[1; 7], [2, 2, 2], Connectivity::Six, &mut out, &mut s).is_err());
    assert!(label(&[1; 8], [2, 2, 2], Connectivity::Six, &mut out, &mut s[..2]).is_err());
    assert!(label(&[], [0, 2, 2], Connectivity::Six, &mut out, &mut s).is_err());
}

mod fx {
    include!("golden/components_fixtures.rs");
}

/// scipy.ndimage.label and cc3d.connected_components number the same components the same way.
#[test]
fn matches_scipy_and_cc3d() {
    let dims = [fx::NX, fx::NY, fx::NZ];
    for (c, scipy, cc3d) in [
        (Connectivity::Six, &fx::SCIPY_6[..], &fx::CC3D_6[..]),
        (Connectivity::Eighteen, &fx::SCIPY_18[..], &fx::CC3D_18[..]),
        (Connectivity::TwentySix, &fx::SCIPY_26[..], &fx::CC3D_26[..]),
    ] {
        let (out, _) = ours(&fx::MASK, dims, c);
        assert_eq!(out, scipy, "{c:?} vs scipy");
        assert_eq!(out, cc3d, "{c:?} vs cc3d");
    }
    let dims2 = [fx::NX, fx::NY, 1];
    let slice = &fx::MASK[..fx::NX * fx::NY];
    for (c, scipy) in [
        (Connectivity::Four, &fx::SCIPY_4[..]),
        (Connectivity::Eight, &fx::SCIPY_8[..]),
    ] {
        let (out, _) = ours(slice, dims2, c);
        assert_eq!(out, scipy, "{c:?} vs scipy (2-D)");
    }
}
