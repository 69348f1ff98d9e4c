//! The same image without dice-core: runtime, semihosting, formatting and the probe, so that
//! the difference in flash and RAM to `dice-m4` is what dice-core's part costs.

#![no_std]
#![no_main]

#[path = "../probe.rs"]
mod probe;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

#[entry]
fn main() -> ! {
    let mut core = cortex_m::Peripherals::take().unwrap();
    probe::start(&mut core.SYST);
    hprintln!("calibration {} {}", probe::calibrate(1_000_000), 2_000_000);
    let (x, stack, ticks) = probe::measure(|| core::hint::black_box(1.5f64));
    hprintln!("soft_loss {:016x}", x.to_bits());
    hprintln!(
        "label {} {} {} {} {} {:016x} {}",
        0,
        1u64,
        2u64,
        3u64,
        4u64,
        5u64,
        1u8
    );
    hprintln!("cost baseline {} {} {}", stack, ticks, 0);
    hprintln!("done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
