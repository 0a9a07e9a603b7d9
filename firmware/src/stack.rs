//! Peak stack depth by stack painting.
//!
//! [`StackMeter::paint`] fills the free part of the stack (from the end of the statics up to a
//! little below the current stack pointer) with [`PAINT`]. [`StackMeter::peak_bytes`] later scans
//! upward from the bottom for the first overwritten word: everything above it was used at some
//! point. Exceptions run on the same (main) stack, so their use is included.

use core::ptr::addr_of;

/// The pattern written over the free stack.
pub const PAINT: u32 = 0x5AFE_C0DE;

/// Bytes left unpainted just below the stack pointer of [`StackMeter::paint`] (its own frame).
const MARGIN: usize = 64;

extern "C" {
    /// Top of the stack (highest address, exclusive), from cortex-m-rt's `link.x`.
    static _stack_start: u32;
    /// Lowest address the stack may reach: the end of `.bss`/`.uninit` (cortex-m-rt 0.7.5+).
    static _stack_end: u32;
}

fn stack_top() -> usize {
    addr_of!(_stack_start) as usize
}

fn stack_bottom() -> usize {
    addr_of!(_stack_end) as usize
}

/// A painted stack whose high-water mark can be read back.
pub struct StackMeter {
    _private: (),
}

impl StackMeter {
    /// Paints the currently unused stack.
    #[inline(never)]
    pub fn paint() -> Self {
        let sp = cortex_m::register::msp::read() as usize;
        let end = sp.saturating_sub(MARGIN) & !3;
        let mut p = stack_bottom();
        while p < end {
            // SAFETY: `[stack_bottom, sp - MARGIN)` lies in RAM below the live part of the stack
            // and above every static (`_stack_end` is the end of `.bss`/`.uninit`); no Rust object
            // lives there (this firmware has no heap), and `p` is 4-byte aligned.
            unsafe { (p as *mut u32).write_volatile(PAINT) };
            p += 4;
        }
        StackMeter { _private: () }
    }

    /// Peak stack use in bytes since [`StackMeter::paint`]: distance from the top of the stack to
    /// the lowest word that no longer holds the pattern.
    #[inline(never)]
    pub fn peak_bytes(&self) -> usize {
        let top = stack_top();
        let mut p = stack_bottom();
        while p < top {
            // SAFETY: `p` is a 4-byte-aligned address in RAM between the end of the statics and
            // the top of the stack; reading a word there has no side effects.
            let word = unsafe { (p as *const u32).read_volatile() };
            if word != PAINT {
                break;
            }
            p += 4;
        }
        top - p
    }

    /// Bytes available to the stack in total (top of RAM down to the end of the statics).
    pub fn capacity_bytes() -> usize {
        stack_top() - stack_bottom()
    }
}
