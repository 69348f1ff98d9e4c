//! A harness of the C ABI, shared by the libFuzzer target and the stable regression test:
//! bytes become shapes, enumeration values, parameters, floats of any bit pattern, counts and
//! label buffers (pointers are always valid for the lengths passed: a C caller's broken
//! promise is not something a library can detect), and every entry point must return a
//! status, never panic or abort.

// Each fuzz target uses one of these functions; the stable replay uses them all.
#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr;

use dice::*;

/// Reads values from fuzz bytes, zeros once they run out.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    pub fn i32(&mut self) -> i32 {
        // Mostly small values (valid enumerations), sometimes anything.
        if self.u8().is_multiple_of(8) {
            self.u64() as i32
        } else {
            (self.u8() % 4) as i32
        }
    }
    pub fn f64(&mut self) -> f64 {
        if self.u8().is_multiple_of(8) {
            f64::from_bits(self.u64())
        } else {
            self.u8() as f64 / 128.0
        }
    }
    pub fn f32(&mut self) -> f32 {
        if self.u8().is_multiple_of(16) {
            f32::from_bits(self.u64() as u32)
        } else {
            self.u8() as f32 / 255.0
        }
    }
}

const ZERO_STATS: DiceStats = DiceStats {
    intersection: 0.0,
    pred: 0.0,
    target: 0.0,
    voxels: 0,
    squared: 0,
    abs_diff: 0.0,
};

pub fn ffi_calls(data: &[u8]) {
    let mut b = Bytes(data);
    let shape = DiceShape {
        batch: 1 + b.u8() as usize % 3,
        channels: 1 + b.u8() as usize % 4,
        spatial: b.u8() as usize % 48,
    };
    let len = shape.batch * shape.channels * shape.spatial;
    let voxels = shape.batch * shape.spatial;
    let pred: Vec<f32> = (0..len).map(|_| b.f32()).collect();
    let dense: Vec<f32> = (0..len).map(|_| b.f32()).collect();
    let labels: Vec<u8> = (0..voxels).map(|_| b.u8() % 6).collect();
    let weights: Vec<f64> = (0..shape.channels).map(|_| b.f64()).collect();
    let mut params = unsafe {
        let mut p = std::mem::zeroed::<DiceSoftParams>();
        dice_soft_params_default(&mut p, std::mem::size_of::<DiceSoftParams>());
        p
    };
    // A struct_size the caller got wrong (never larger than the struct: that would be the
    // caller's out-of-bounds read, not the library's).
    if b.u8() % 8 == 0 {
        params.struct_size = b.u8() as usize % (std::mem::size_of::<DiceSoftParams>() + 1);
    }
    params.score = b.i32();
    params.alpha = b.f64();
    params.beta = b.f64();
    params.weighting = b.i32();
    params.squared_pred = b.u8() % 3;
    params.soft_label = b.u8() % 3;
    params.smooth_nr = b.f64();
    params.smooth_dr = b.f64();
    params.form = b.i32();
    params.gamma = b.f64();
    params.include_background = b.u8() % 3;
    params.batch = b.u8() % 3;
    params.reduction = b.i32();
    params.zero_denominator = b.i32();
    params.activation = b.i32();
    if b.u8() % 2 == 0 {
        params.class_weights = weights.as_ptr();
        params.class_weights_len = weights.len();
    }
    let target = if b.u8() % 2 == 0 {
        DiceTarget {
            struct_size: std::mem::size_of::<DiceTarget>(),
            kind: 0,
            data: dense.as_ptr().cast(),
            len,
            has_ignore_index: 0,
            ignore_index: 0,
        }
    } else {
        DiceTarget {
            struct_size: std::mem::size_of::<DiceTarget>(),
            kind: 1,
            data: labels.as_ptr().cast(),
            len: voxels,
            has_ignore_index: b.u8() % 2,
            ignore_index: (b.u8() % 8) as i64,
        }
    };
    let mask: Vec<u8> = (0..voxels).map(|_| b.u8() % 2).collect();
    let mask_ptr = if b.u8() % 2 == 0 {
        ptr::null()
    } else {
        mask.as_ptr()
    };
    // Components, lesion-wise scores and detection of the two label maps' label-1 masks on a
    // grid of any (possibly wrong) size and spacing.
    unsafe {
        let grid = DiceGrid {
            dims: [shape.spatial.max(1), shape.batch, 1 + (b.u8() % 2) as usize],
            spacing: [b.f64(), 1.0, 0.5 + (b.u8() % 4) as f64],
        };
        let pm: Vec<u8> = labels.iter().map(|&l| u8::from(l == 1)).collect();
        let gm: Vec<u8> = labels.iter().rev().map(|&l| u8::from(l == 1)).collect();
        let conn = [4, 6, 8, 18, 26, 5][(b.u8() % 6) as usize];
        let mut need = 0usize;
        let _ = dice_components_scratch_len(grid, &mut need);
        let mut out = vec![0u32; pm.len()];
        let mut scratch = vec![0u32; need.min(1 << 16)];
        let mut count = 0u32;
        let _ = dice_connected_components(
            pm.as_ptr(),
            pm.len(),
            grid,
            conn,
            out.as_mut_ptr(),
            scratch.as_mut_ptr(),
            scratch.len(),
            &mut count,
        );
        let mut bp = std::mem::zeroed::<DiceBratsParams>();
        let _ =
            dice_brats_params_default(b.i32() % 4, &mut bp, std::mem::size_of::<DiceBratsParams>());
        bp.dilation = (b.u8() % 4) as u32;
        bp.connectivity = conn;
        let mut lw = std::mem::zeroed::<DiceLesionWise>();
        let mut les = vec![std::mem::zeroed::<DiceLesion>(); (b.u8() % 4) as usize];
        let mut nles = 0usize;
        let _ = dice_lesion_wise(
            &bp,
            grid,
            pm.as_ptr(),
            gm.as_ptr(),
            pm.len(),
            &mut lw,
            les.as_mut_ptr(),
            les.len(),
            &mut nles,
        );
        let mut det = std::mem::zeroed::<DiceDetection>();
        let _ = dice_lesion_detection(
            grid,
            pm.as_ptr(),
            gm.as_ptr(),
            pm.len(),
            conn,
            0.5 + (b.u8() % 3) as f64 * 0.2,
            &mut det,
        );
    }
    let pairs = shape.batch * shape.channels;
    let mut stats = vec![ZERO_STATS; pairs];
    let mut grad = vec![0f32; len];
    let mut value = DiceLossValue {
        value: 0.0,
        groups: 0,
        defined: 0,
    };
    unsafe {
        let with_grad = b.u8() % 2 == 0;
        let _ = dice_soft_loss_f32(
            &params,
            shape,
            pred.as_ptr(),
            &target,
            mask_ptr,
            stats.as_mut_ptr(),
            pairs,
            if with_grad {
                grad.as_mut_ptr()
            } else {
                ptr::null_mut()
            },
            if with_grad { len } else { 0 },
            &mut value,
        );
        // The fused compound loss over the same buffers, read as logits.
        let mut cp = std::mem::zeroed::<DiceCompoundParams>();
        dice_compound_params_default(&mut cp, std::mem::size_of::<DiceCompoundParams>());
        cp.term = b.i32() % 4;
        cp.lambda_dice = b.f64();
        cp.lambda_term = b.f64();
        cp.label_smoothing = b.f64();
        cp.gamma = b.f64();
        cp.has_alpha = b.u8() % 3;
        cp.alpha = b.f64();
        if b.u8() % 2 == 0 {
            cp.weights = weights.as_ptr();
            cp.weights_len = weights.len();
        }
        let mut cv = std::mem::zeroed::<DiceCompoundValue>();
        let _ = dice_compound_loss_f32(
            &params,
            &cp,
            shape,
            pred.as_ptr(),
            &target,
            mask_ptr,
            stats.as_mut_ptr(),
            pairs,
            grad.as_mut_ptr(),
            len,
            &mut cv,
        );
        let ups: Vec<f64> = (0..1 + b.u8() as usize % pairs.max(1))
            .map(|_| b.f64())
            .collect();
        let _ = dice_soft_gradient_f32(
            &params,
            shape,
            pred.as_ptr(),
            &target,
            mask_ptr,
            stats.as_ptr(),
            pairs,
            ups.as_ptr(),
            ups.len(),
            grad.as_mut_ptr(),
            len,
        );
        // Statistics of any bit pattern.
        let wild: Vec<DiceStats> = (0..pairs)
            .map(|_| DiceStats {
                intersection: b.f64(),
                pred: b.f64(),
                target: b.f64(),
                voxels: b.u64(),
                squared: b.u8() % 4,
                abs_diff: b.f64(),
            })
            .collect();
        let mut groups = vec![0f64; pairs];
        let mut defined = vec![0u8; pairs];
        let _ = dice_soft_loss_from_stats(
            &params,
            shape,
            wild.as_ptr(),
            pairs,
            groups.as_mut_ptr(),
            defined.as_mut_ptr(),
            b.u8() as usize % (pairs + 2),
            &mut value,
        );
        // Label confusion of every label type, buffers sized for the type.
        let ty = b.i32();
        let classes = b.u8() as usize % 9;
        let n = b.u8() as usize % 80;
        let buf_p: Vec<u64> = (0..n).map(|_| b.u64() % 7).collect();
        let buf_t: Vec<u64> = (0..n).map(|_| b.u64() % 7).collect();
        let mut out = vec![
            DiceConfusion {
                tp: 0,
                fp: 0,
                fn_: 0,
                tn: 0
            };
            classes
        ];
        let mut counted = 0u64;
        let _ = dice_label_confusion(
            ty,
            buf_p.as_ptr().cast::<c_void>(),
            buf_t.as_ptr().cast::<c_void>(),
            n,
            b.u8() % 2,
            b.i32() as i64,
            out.as_mut_ptr(),
            classes,
            &mut counted,
        );
        // Metrics of counts of any size.
        let counts: Vec<DiceConfusion> = (0..4)
            .map(|_| DiceConfusion {
                tp: b.u64(),
                fp: b.u64(),
                fn_: b.u64(),
                tn: b.u64(),
            })
            .collect();
        let mut values = [0f64; 4];
        let mut def = [0u8; 4];
        let _ = dice_metrics(
            counts.as_ptr(),
            4,
            b.i32(),
            DiceEmptyPolicy {
                reference_empty: b.i32(),
                both_empty: b.i32(),
            },
            values.as_mut_ptr(),
            def.as_mut_ptr(),
        );
        // The accumulator through a sequence of calls.
        let mut acc: *mut DiceAccumulator = ptr::null_mut();
        let acc_classes = b.u8() as usize % 5;
        if dice_accumulator_new(
            acc_classes,
            b.f64(),
            b.u8() % 2,
            (b.u8() % 4) as i64,
            &mut acc,
        ) == DiceStatus::Ok
        {
            let mut other: *mut DiceAccumulator = ptr::null_mut();
            let _ = dice_accumulator_new(acc_classes, 0.5, 0, 0, &mut other);
            for _ in 0..b.u8() % 6 {
                match b.u8() % 4 {
                    0 => {
                        let v = b.u8() as usize % 20;
                        let p: Vec<f32> = (0..acc_classes * v).map(|_| b.f32()).collect();
                        let t: Vec<f32> = (0..acc_classes * v).map(|_| b.f32()).collect();
                        let _ = dice_accumulator_update_probabilities_f32(
                            acc,
                            p.as_ptr(),
                            t.as_ptr(),
                            v,
                        );
                    }
                    1 => {
                        let _ = dice_accumulator_update_labels(
                            acc,
                            b.i32(),
                            buf_p.as_ptr().cast(),
                            buf_t.as_ptr().cast(),
                            n,
                        );
                    }
                    2 => {
                        let _ = dice_accumulator_merge(acc, other);
                    }
                    _ => {
                        let mut c = vec![
                            DiceConfusion {
                                tp: 0,
                                fp: 0,
                                fn_: 0,
                                tn: 0
                            };
                            acc_classes
                        ];
                        let mut s = vec![ZERO_STATS; acc_classes];
                        let _ = dice_accumulator_finish(
                            acc,
                            c.as_mut_ptr(),
                            s.as_mut_ptr(),
                            acc_classes,
                        );
                    }
                }
            }
            dice_accumulator_free(other);
            dice_accumulator_free(acc);
        }
    }
}
