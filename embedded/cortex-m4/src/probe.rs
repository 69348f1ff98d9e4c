//! What a call costs on the device: the deepest stack it used (the stack below the caller is
//! painted with a pattern, and the lowest word changed found afterwards) and the SysTick ticks
//! it took (25 MHz on mps2-an386; under QEMU's `-icount shift=0` one instruction is one
//! virtual nanosecond, so one tick is 40 instructions).

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

const PATTERN: u32 = 0xDEAD_BEEF;
/// How far below the caller the stack is painted.
const PAINT: usize = 16 * 1024;

/// Starts SysTick free-running from its largest reload (24 bits), without its interrupt.
pub fn start(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
}

/// SysTick ticks of `n` iterations of a two-instruction loop (`subs`, `bne`): how many
/// instructions one tick is (40 when QEMU runs with `-icount shift=0`).
#[inline(never)]
pub fn calibrate(n: u32) -> u32 {
    let t0 = SYST::get_current();
    // SAFETY: a counted loop on a register, no memory access.
    unsafe {
        core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) n => _, options(nomem, nostack));
    }
    let t1 = SYST::get_current();
    t0.wrapping_sub(t1) & 0x00FF_FFFF
}

/// Runs `f`, returning its result, the stack it used below this frame (bytes) and the SysTick
/// ticks it took.
#[inline(never)]
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, u32) {
    // AAPCS allows no use of the stack below SP, so everything from SP down is free here.
    let sp = cortex_m::register::msp::read() as usize;
    let top = sp & !3;
    let bottom = top - PAINT;
    for a in (bottom..top).step_by(4) {
        // SAFETY: unused stack below this frame (RAM is 4 MiB, no interrupt is enabled).
        unsafe { (a as *mut u32).write_volatile(PATTERN) };
    }
    let t0 = SYST::get_current();
    let r = f();
    let t1 = SYST::get_current();
    let mut lowest = top;
    for a in (bottom..top).step_by(4) {
        // SAFETY: as above; read after `f` returned.
        if unsafe { (a as *const u32).read_volatile() } != PATTERN {
            lowest = a;
            break;
        }
    }
    (r, top - lowest, t0.wrapping_sub(t1) & 0x00FF_FFFF)
}

/// A panic ends the run with a failure status (the host test reports it).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
