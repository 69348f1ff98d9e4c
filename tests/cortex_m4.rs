//! dice-core on a Cortex-M4F, proven: the firmware in `embedded/cortex-m4` is built for
//! `thumbv7em-none-eabihf`, run under `qemu-system-arm -machine mps2-an386`, and its output
//! checked against this (host) build on the same inputs; its costs are measured and held to a
//! budget (flash of dice-core's part, stack of each entry point, instructions per element).
//!
//! Needs the Rust target and QEMU (the README's test command provisions both and sets
//! `DICE_REQUIRE_EMBEDDED=1`); elsewhere the test says it skipped.

#[path = "../embedded/cortex-m4/src/data.rs"]
#[allow(dead_code)]
mod data;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dice_core::hard::{self, Confusion, EmptyPolicy};
use dice_core::{Shape, SoftInput, SoftLoss, SoftStats, Target};

/// Flash (code and constants) dice-core's part may take: the soft loss with its gradient, the
/// streamed statistics, the label counts and the Dice of each label, with the example's glue.
/// Measured 41,280 B at opt-level "s" with LTO (2026-12-02); the largest parts are the
/// statistics pass with every target kind it dispatches to (13.8 KB: dense and five label
/// types, linear, squared and soft-label sums, each unrolled), the f64 soft-float routines a
/// Cortex-M4F needs (its FPU is single precision) and libm's `pow` (the focal exponent). The
/// budget holds that, with 3.7 KB to spare; 24 KB would need a size-oriented kernel set.
const FLASH_BUDGET: u64 = 44 * 1024;
/// Stack any of those entry points may use.
const STACK_BUDGET: u64 = 1024;

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("embedded/cortex-m4")
}

/// Whether the target and QEMU are here; `Err` says what is missing.
fn tools() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("thumbv7em-none-eabihf"))
        .unwrap_or(false);
    if !installed {
        return Err("the thumbv7em-none-eabihf target is not installed".into());
    }
    if Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        return Err("qemu-system-arm is not installed".into());
    }
    Ok(())
}

/// Builds both images (release: what a device would flash); returns the ELF files.
fn build() -> (PathBuf, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cortex-m4");
    let out = Command::new(cargo)
        .current_dir(crate_dir())
        .args(["build", "--release", "--bins", "--target-dir"])
        .arg(&target_dir)
        // The host's flags (e.g. -C target-cpu=native) must not reach the Cortex-M build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = target_dir.join("thumbv7em-none-eabihf/release");
    (dir.join("dice-m4"), dir.join("baseline"))
}

/// Runs an image under QEMU (at most 60 s), returns its semihosting output by key.
fn run(elf: &Path) -> HashMap<String, Vec<Vec<String>>> {
    let mut child = Command::new("qemu-system-arm")
        .args([
            "-cpu",
            "cortex-m4",
            "-machine",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-icount",
            "shift=0",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-arm runs");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{} did not finish in 60 s under QEMU", elf.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{}: {text}\n{err}", elf.display());
    assert!(text.lines().any(|l| l == "done"), "{text}");
    let mut map: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for line in text.lines() {
        let mut w = line.split_whitespace().map(str::to_string);
        if let Some(k) = w.next() {
            map.entry(k).or_default().push(w.collect());
        }
    }
    map
}

/// Bytes of flash (allocated sections loaded from the image: code, constants, initialised
/// data) and of RAM (writable sections: data and zeroed) of an ELF32 little-endian image.
fn sizes(elf: &Path) -> (u64, u64) {
    let b = std::fs::read(elf).unwrap();
    assert_eq!(&b[..6], b"\x7fELF\x01\x01", "an ELF32 little-endian image");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
    let (shoff, shentsize, shnum) = (u32_at(0x20) as usize, u16_at(0x2e), u16_at(0x30));
    let (mut flash, mut ram) = (0, 0);
    for k in 0..shnum {
        let h = shoff + k * shentsize;
        let (kind, flags, size) = (u32_at(h + 4), u32_at(h + 8), u32_at(h + 20));
        const WRITE: u64 = 1;
        const ALLOC: u64 = 2;
        const PROGBITS: u64 = 1;
        const NOBITS: u64 = 8;
        if flags & ALLOC == 0 {
            continue;
        }
        if kind == PROGBITS {
            flash += size;
        }
        if flags & WRITE != 0 && (kind == PROGBITS || kind == NOBITS) {
            ram += size;
        }
    }
    (flash, ram)
}

fn bits64(s: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(s, 16).unwrap())
}

#[test]
fn dice_core_on_a_cortex_m4_under_qemu() {
    if let Err(why) = tools() {
        assert!(
            std::env::var_os("DICE_REQUIRE_EMBEDDED").is_none(),
            "DICE_REQUIRE_EMBEDDED is set but {why}"
        );
        eprintln!(
            "SKIPPED dice_core_on_a_cortex_m4_under_qemu: {why} (./run-tests.sh provisions both)"
        );
        return;
    }
    // The device runs the portable kernels: so does the host here (this test is alone in its
    // process, and sets the cap before any kernel runs), so that the results agree to the bit.
    std::env::set_var("DICE_SIMD", "portable");
    let (elf, baseline) = build();
    let out = run(&elf);

    // The host build on the same inputs.
    let (n, c, s) = (data::N, data::C, data::S);
    let mut pred = vec![0f32; n * c * s];
    let mut target = vec![0f32; n * c * s];
    data::soft(&mut pred, &mut target);
    let shape = Shape::new(n, c, s);
    let input = SoftInput::new(shape, &pred, Target::Dense(&target)).unwrap();
    let mut stats = vec![SoftStats::default(); n * c];
    let mut grad = vec![0f32; n * c * s];
    let loss = SoftLoss::dice();
    let want = loss
        .loss_and_gradient(&input, &mut stats, &mut grad)
        .unwrap();
    // The same kernels on the same f32 inputs: the same bits, for the loss and every
    // gradient element printed. The streamed loss adds the same block sums in another
    // grouping (slice by slice), so it agrees to f64 rounding.
    let got = bits64(&out["soft_loss"][0][0]);
    assert_eq!(
        got.to_bits(),
        want.value.to_bits(),
        "device {got} vs host {}",
        want.value
    );
    let streamed = bits64(&out["streamed_loss"][0][0]);
    assert!((streamed - want.value).abs() <= 1e-15, "{streamed}");
    for g in &out["grad"] {
        let i: usize = g[0].parse().unwrap();
        let dev = f32::from_bits(u32::from_str_radix(&g[1], 16).unwrap());
        assert_eq!(
            dev.to_bits(),
            grad[i].to_bits(),
            "grad[{i}]: device {dev} vs host {}",
            grad[i]
        );
    }
    let host_sum: f64 = grad.iter().map(|&g| g as f64).sum();
    assert_eq!(bits64(&out["grad_sum"][0][0]).to_bits(), host_sum.to_bits());

    // Hard counts and Dice: exact integers and the same f64 expression, to the bit; the
    // streamed counts equal the whole ones (flag 1).
    let mut lp = vec![0u8; data::VOXELS];
    let mut lr = vec![0u8; data::VOXELS];
    data::labels(&mut lp, &mut lr);
    let mut counts = vec![Confusion::default(); data::LABELS];
    let counted = hard::label_confusion(&lp, &lr, None, &mut counts).unwrap();
    assert_eq!(out["counted"][0][0], counted.to_string());
    for (l, row) in out["label"].iter().enumerate() {
        let cc = &counts[l];
        assert_eq!(
            row[..5],
            [
                l.to_string(),
                cc.tp.to_string(),
                cc.fp.to_string(),
                cc.fn_.to_string(),
                cc.tn.to_string()
            ]
        );
        let d = cc.dice(EmptyPolicy::DEFAULT).unwrap();
        assert_eq!(bits64(&row[5]).to_bits(), d.to_bits(), "label {l}");
        assert_eq!(row[6], "1", "streamed counts of label {l}");
    }

    // Costs: flash and RAM of dice-core's part (this image against the baseline image with
    // the same runtime, printing and probe), stack and instructions of each entry point.
    let (flash, ram) = sizes(&elf);
    let (flash0, ram0) = sizes(&baseline);
    let buffers =
        (3 * n * c * s * 4 + 2 * n * c * (s / data::SLICES) * 4 + 2 * data::VOXELS) as u64;
    let dice_flash = flash - flash0;
    let dice_ram = (ram - ram0).saturating_sub(buffers);
    let cal = &out["calibration"][0];
    let per_tick = cal[1].parse::<f64>().unwrap() / cal[0].parse::<f64>().unwrap();
    eprintln!(
        "Cortex-M4F (thumbv7em-none-eabihf, opt-level s, LTO): dice-core's part {dice_flash} B \
         of flash ({flash} B image, {flash0} B without dice-core), {dice_ram} B of RAM beyond \
         the example's {buffers} B of buffers; {per_tick} instructions per SysTick tick"
    );
    for cost in &out["cost"] {
        let (stack, ticks, elements): (u64, f64, f64) = (
            cost[1].parse().unwrap(),
            cost[2].parse().unwrap(),
            cost[3].parse().unwrap(),
        );
        eprintln!(
            "  {}: {stack} B of stack, {:.1} instructions per element (QEMU -icount)",
            cost[0],
            ticks * per_tick / elements
        );
        assert!(stack <= STACK_BUDGET, "{}: {stack} B of stack", cost[0]);
        assert!(stack > 0, "{}: the stack probe saw nothing", cost[0]);
    }
    assert!(
        dice_flash <= FLASH_BUDGET,
        "dice-core's part: {dice_flash} B of flash"
    );
    // dice-core holds no RAM of its own: every buffer is the caller's.
    assert_eq!(dice_ram, 0, "dice-core's statics: {dice_ram} B of RAM");
}
