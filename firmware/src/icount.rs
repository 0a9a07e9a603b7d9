//! Deterministic instruction counting with SysTick under QEMU `-icount`.
//!
//! QEMU does not emulate the DWT cycle counter, and without `-icount` SysTick follows the host's
//! wall clock. With `-icount shift=3,sleep=off` every guest instruction advances the virtual clock
//! by 2^3 ns, and SysTick, driven by the board's processor clock ([`crate::board::SYSTICK_HZ`]:
//! 25 MHz on the MPS2 boards, so 40 ns or 5 instructions per tick), advances repeatably on any
//! host. [`ticks_to_instructions`] converts exactly (`ticks * 10^9 / (SYSTICK_HZ * 2^3)`, rounded
//! down). The figures are *executed instructions (QEMU icount)*, not cycles.
//!
//! The 24-bit down-counter is extended to 64 bits by counting its wraps in the SysTick exception.
//! [`InstructionCounter::start`] calibrates the cost of a measurement itself (reading the counter
//! twice around an empty closure) and [`InstructionCounter::measure`] subtracts it. Resolution is
//! one tick (from under 1 to 8 instructions, depending on the board's clock).
//!
//! Without `-icount` the numbers are meaningless (but harmless).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};
use cortex_m_rt::exception;

/// QEMU `-icount` shift the figures assume (`-icount shift=3,sleep=off`).
pub const ICOUNT_SHIFT: u32 = 3;

/// Executed instructions in `ticks` SysTick ticks under `-icount shift=ICOUNT_SHIFT`:
/// `ticks * 10^9 / (SYSTICK_HZ * 2^ICOUNT_SHIFT)`, rounded down.
pub const fn ticks_to_instructions(ticks: u64) -> u64 {
    let hz = crate::board::SYSTICK_HZ as u128;
    ((ticks as u128 * 1_000_000_000) / (hz << ICOUNT_SHIFT)) as u64
}
/// SysTick reload value: the full 24-bit range, so one wrap is 2^24 ticks.
const RELOAD: u32 = 0x00FF_FFFF;
/// Ticks per wrap of the counter.
const PERIOD: u64 = RELOAD as u64 + 1;

/// Number of times the SysTick counter wrapped since [`InstructionCounter::start`].
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Load then store (no read-modify-write atomics on the Cortex-M0): only this handler writes
    // while the counter runs, and it cannot interrupt itself.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A free-running 64-bit tick counter on SysTick; owns the SysTick peripheral.
pub struct InstructionCounter {
    _syst: SYST,
    /// Instructions that an empty measurement reports (subtracted from every measurement).
    overhead: u64,
}

impl InstructionCounter {
    /// Starts SysTick on the processor clock with the full 24-bit reload and its exception
    /// enabled, waits until the counter runs, then calibrates the measurement overhead.
    pub fn start(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        WRAPS.store(0, Ordering::Relaxed);
        syst.enable_interrupt();
        syst.enable_counter();
        // After clearing, the counter reads 0 until the first tick reloads it.
        while SYST::get_current() == 0 {
            cortex_m::asm::nop();
        }
        let mut counter = InstructionCounter {
            _syst: syst,
            overhead: 0,
        };
        // Every empty measurement costs the same; keep the smallest in case a wrap landed in one.
        counter.overhead = (0..8)
            .map(|_| counter.measure(|| core::hint::black_box(())).1)
            .min()
            .unwrap_or(0);
        counter
    }

    /// Ticks since [`InstructionCounter::start`] (monotonic, 64-bit).
    #[inline(always)]
    pub fn now_ticks(&self) -> u64 {
        cortex_m::interrupt::free(|_| {
            let mut wraps = u64::from(WRAPS.load(Ordering::Relaxed));
            let current = SYST::get_current();
            // With interrupts masked a wrap cannot be counted yet: if one is pending and the
            // counter was read after it (still near the reload value), count it here.
            if SCB::is_pendst_pending() && current > RELOAD / 2 {
                wraps += 1;
            }
            wraps * PERIOD + u64::from(RELOAD - current)
        })
    }

    /// Instructions an empty measurement reports; already subtracted by [`Self::measure`].
    pub fn overhead(&self) -> u64 {
        self.overhead
    }

    /// Runs `f` and returns its result with the number of instructions it executed (calibrated
    /// overhead removed; resolution one tick).
    #[inline(never)]
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, u64) {
        let start = self.now_ticks();
        let result = core::hint::black_box(f());
        let end = self.now_ticks();
        let instructions = ticks_to_instructions(end - start);
        (result, instructions.saturating_sub(self.overhead))
    }
}
