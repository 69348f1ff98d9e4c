//! dice-core on a Cortex-M4F: what a device evaluating its own segmentation runs, on fixed
//! buffers without allocation, printed over semihosting for `tests/cortex_m4.rs` to check
//! against the host build. Numbers are printed as the bits of their `f64` (no float
//! formatting in the image), costs as `cost <what> <stack bytes> <SysTick ticks> <elements>`.

#![no_std]
#![no_main]

mod data;
mod probe;

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use dice_core::hard::{self, Confusion, EmptyPolicy};
use dice_core::{Shape, SoftInput, SoftLoss, SoftStats, Target};

use data::{C, LABELS, N, S, SLICES, VOXELS};

const LEN: usize = N * C * S;
const PART: usize = S / SLICES;

static mut PRED: [f32; LEN] = [0.0; LEN];
static mut TARGET: [f32; LEN] = [0.0; LEN];
static mut GRAD: [f32; LEN] = [0.0; LEN];
static mut PRED_PART: [f32; N * C * PART] = [0.0; N * C * PART];
static mut TARGET_PART: [f32; N * C * PART] = [0.0; N * C * PART];
static mut LABELS_PRED: [u8; VOXELS] = [0; VOXELS];
static mut LABELS_REF: [u8; VOXELS] = [0; VOXELS];

fn fail(what: &str) -> ! {
    hprintln!("error {}", what);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals"));
    probe::start(&mut core.SYST);
    // SAFETY: the only references to these buffers, taken once in the only thread.
    let (pred, target, grad, pp, tp, lp, lr) = unsafe {
        (
            &mut *addr_of_mut!(PRED),
            &mut *addr_of_mut!(TARGET),
            &mut *addr_of_mut!(GRAD),
            &mut *addr_of_mut!(PRED_PART),
            &mut *addr_of_mut!(TARGET_PART),
            &mut *addr_of_mut!(LABELS_PRED),
            &mut *addr_of_mut!(LABELS_REF),
        )
    };
    hprintln!("calibration {} {}", probe::calibrate(1_000_000), 2_000_000);
    data::soft(pred, target);
    data::labels(lp, lr);
    let shape = Shape::new(N, C, S);
    let loss = SoftLoss::dice();

    // The soft Dice loss and its gradient over the whole [1, 2, 2048].
    let mut stats = [SoftStats::default(); N * C];
    let (value, stack, ticks) = probe::measure(|| {
        let input = SoftInput::new(shape, &pred[..], Target::Dense(&target[..]))?;
        loss.loss_and_gradient(&input, &mut stats, &mut grad[..])
    });
    let value = value.unwrap_or_else(|_| fail("soft loss"));
    hprintln!("soft_loss {:016x}", value.value.to_bits());
    let mut sum = 0.0f64;
    for g in grad.iter() {
        sum += *g as f64;
    }
    hprintln!("grad_sum {:016x}", sum.to_bits());
    for i in [0usize, 1, 24, 25, 2048, 2072, 4095] {
        hprintln!("grad {} {:08x}", i, grad[i].to_bits());
    }
    hprintln!("cost soft_loss_and_gradient {} {} {}", stack, ticks, LEN);

    // The same loss from statistics streamed slice by slice (a device that holds one slice):
    // each slice's [1, 2, 512] copied out, its statistics merged into the running ones.
    let mut merged = [SoftStats::default(); N * C];
    let part = Shape::new(N, C, PART);
    for k in 0..SLICES {
        for c in 0..C {
            pp[c * PART..(c + 1) * PART]
                .copy_from_slice(&pred[c * S + k * PART..c * S + (k + 1) * PART]);
            tp[c * PART..(c + 1) * PART]
                .copy_from_slice(&target[c * S + k * PART..c * S + (k + 1) * PART]);
        }
        let mut st = [SoftStats::default(); N * C];
        let (r, stack, ticks) = probe::measure(|| {
            let input = SoftInput::new(part, &pp[..], Target::Dense(&tp[..]))?;
            loss.statistics(&input, &mut st)
        });
        r.unwrap_or_else(|_| fail("slice statistics"));
        if k == 0 {
            hprintln!("cost slice_statistics {} {} {}", stack, ticks, N * C * PART);
        }
        for (m, s) in merged.iter_mut().zip(st.iter()) {
            *m = m.merge(s).unwrap_or_else(|_| fail("merge"));
        }
    }
    let streamed = loss
        .loss(shape, &merged)
        .unwrap_or_else(|_| fail("streamed loss"));
    hprintln!("streamed_loss {:016x}", streamed.value.to_bits());

    // Hard counts of two 4-label maps, whole and streamed, and per-label Dice.
    let mut counts = [Confusion::default(); LABELS];
    let (counted, stack, ticks) =
        probe::measure(|| hard::label_confusion(&lp[..], &lr[..], None, &mut counts));
    let counted = counted.unwrap_or_else(|_| fail("label confusion"));
    hprintln!("cost label_confusion {} {} {}", stack, ticks, VOXELS);
    let mut streamed_counts = [Confusion::default(); LABELS];
    for k in 0..SLICES {
        let (a, b) = (k * VOXELS / SLICES, (k + 1) * VOXELS / SLICES);
        let mut part = [Confusion::default(); LABELS];
        hard::label_confusion(&lp[a..b], &lr[a..b], None, &mut part)
            .unwrap_or_else(|_| fail("slice confusion"));
        for (m, p) in streamed_counts.iter_mut().zip(part.iter()) {
            *m = m.merge(p);
        }
    }
    hprintln!("counted {}", counted);
    for (l, c) in counts.iter().enumerate() {
        let d = c.dice(EmptyPolicy::DEFAULT).map_or(u64::MAX, f64::to_bits);
        let same = streamed_counts[l] == *c;
        hprintln!(
            "label {} {} {} {} {} {:016x} {}",
            l,
            c.tp,
            c.fp,
            c.fn_,
            c.tn,
            d,
            same as u8
        );
    }
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
