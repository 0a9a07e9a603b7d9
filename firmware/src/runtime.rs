//! What every program on every board shares: exit codes and fatal handlers.
//!
//! Every way a program can go wrong ends the emulator with a failure exit code: a panic (logged
//! with defmt), a HardFault or any other unexpected exception (reported as plain text on the
//! semihosting standard error, which never carries defmt frames, so it cannot corrupt them).
//! On a real board the exit goes to the debug probe (`probe-rs run` ends with the code).
//!
//! Only atomic loads and stores are used (the Cortex-M0 has no compare-and-swap).

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hio};

/// Set once a fatal path has started, so a fault while reporting cannot loop.
static FATAL: AtomicBool = AtomicBool::new(false);

/// Ends the emulator: exit code 0 if `passed`, 1 otherwise.
pub fn exit(passed: bool) -> ! {
    debug::exit(if passed {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a semihosting host that honours the exit request.
    loop {
        cortex_m::asm::nop();
    }
}

/// The core peripherals, taken once at start-up; ends the program (failure) if they were
/// already taken, instead of panicking.
pub fn take_peripherals() -> cortex_m::Peripherals {
    match cortex_m::Peripherals::take() {
        Some(p) => p,
        None => {
            defmt::error!("the core peripherals were already taken");
            exit(false)
        }
    }
}

/// Writes a plain-text line to the host's standard error (best effort).
pub fn report_fatal(args: core::fmt::Arguments<'_>) {
    if let Ok(mut stderr) = hio::hstderr() {
        let _ = stderr.write_fmt(args);
        let _ = stderr.write_str("\n");
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // The first panic is logged with defmt (in order with the rest of the log). If logging itself
    // panics (for example a panic raised inside a log statement), the nested call only writes
    // plain text to stderr and exits.
    // Load then store: no compare-and-swap on the Cortex-M0, and a panic cannot interrupt itself
    // between the two.
    let first = !FATAL.load(Ordering::Relaxed);
    FATAL.store(true, Ordering::Relaxed);
    if first {
        report_fatal(format_args!("firmware panicked: {info}"));
        defmt::error!("panicked: {}", defmt::Display2Format(info));
    } else {
        report_fatal(format_args!(
            "firmware panicked while reporting a fault: {info}"
        ));
    }
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    FATAL.store(true, Ordering::Relaxed);
    report_fatal(format_args!(
        "HardFault: pc={:#010x} lr={:#010x} xpsr={:#010x}",
        frame.pc(),
        frame.lr(),
        frame.xpsr()
    ));
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    FATAL.store(true, Ordering::Relaxed);
    report_fatal(format_args!("unexpected exception or interrupt {irqn}"));
    exit(false)
}
