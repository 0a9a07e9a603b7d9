//! The defmt global logger of every program, written here so that no panic is linked in.
//!
//! `defmt-semihosting` and `defmt-rtt` panic when a log statement starts inside another one
//! (their `acquire` checks for re-entry with `panic!`): with them, every program carried
//! `core::panicking` and a panic handler. This logger drops a nested frame instead (the outer
//! frame is finished normally), and never panics or indexes out of bounds: `cargo xtask test`
//! checks that no release ELF contains a panic path (`xtask/src/panic_check.rs`).
//!
//! Frames are encoded by [`defmt::Encoder`] (rzCOBS) inside a critical section (interrupts
//! masked, restored on release) and written to one of two transports:
//! - semihosting standard output (default; QEMU, decoded by `cargo xtask`);
//! - RTT with the `rtt` feature (a real board, `probe-rs run`): a SEGGER RTT control block with
//!   one up channel named `defmt`, non-blocking (bytes that do not fit are dropped) until the
//!   host switches the channel to blocking mode, as `probe-rs run` does.

use core::cell::UnsafeCell;

/// The logger's state; only touched with interrupts masked (see [`Logger`]).
struct State {
    /// A frame is open.
    taken: bool,
    /// Nested `acquire`s whose frames are being dropped.
    nested: u32,
    /// PRIMASK before the outer `acquire` (restored by its `release`).
    primask: u32,
    encoder: defmt::Encoder,
}

struct Shared(UnsafeCell<State>);

// SAFETY: the state is only accessed inside `acquire`/`write`/`release` with interrupts masked on
// a single-core processor, so no two accesses overlap.
unsafe impl Sync for Shared {}

static STATE: Shared = Shared(UnsafeCell::new(State {
    taken: false,
    nested: 0,
    primask: 0,
    encoder: defmt::Encoder::new(),
}));

#[defmt::global_logger]
struct Logger;

// SAFETY: defmt's contract: `acquire` and `release` are paired (nested pairs only from an
// interrupting context, handled by dropping the nested frame), `write` only between them; the
// state is accessed with interrupts masked.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        let primask = cortex_m::register::primask::read_raw();
        cortex_m::interrupt::disable();
        // SAFETY: interrupts are masked (a fault handler that logs would nest, which the
        // `taken` check turns into a dropped frame); nothing else holds a reference to STATE.
        let s = unsafe { &mut *STATE.0.get() };
        if s.taken {
            s.nested = s.nested.saturating_add(1);
            return;
        }
        s.taken = true;
        s.primask = primask;
        s.encoder.start_frame(sink::write);
    }

    unsafe fn flush() {
        sink::flush();
    }

    unsafe fn release() {
        // SAFETY: as in `acquire`: called with interrupts masked by the matching `acquire`.
        let s = unsafe { &mut *STATE.0.get() };
        if s.nested > 0 {
            s.nested -= 1;
            return;
        }
        if !s.taken {
            return;
        }
        s.encoder.end_frame(sink::write);
        s.taken = false;
        // SAFETY: restores the interrupt mask the matching `acquire` found (enabled or not), as
        // a critical section ends.
        unsafe { cortex_m::register::primask::write_raw(s.primask) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: as in `acquire`.
        let s = unsafe { &mut *STATE.0.get() };
        if s.taken && s.nested == 0 {
            s.encoder.write(bytes, sink::write);
        }
    }
}

/// Semihosting standard output: QEMU's `-semihosting` writes it to its stdout.
#[cfg(not(feature = "rtt"))]
mod sink {
    use cortex_m_semihosting::hio::{self, HostStream};

    struct Stdout(core::cell::UnsafeCell<Option<HostStream>>);

    // SAFETY: only used by the logger, with interrupts masked.
    unsafe impl Sync for Stdout {}

    static STDOUT: Stdout = Stdout(core::cell::UnsafeCell::new(None));

    /// Writes `bytes` (dropped if the host has no semihosting).
    pub fn write(bytes: &[u8]) {
        // SAFETY: called by the logger with interrupts masked; no other reference exists.
        let out = unsafe { &mut *STDOUT.0.get() };
        if out.is_none() {
            *out = hio::hstdout().ok();
        }
        if let Some(h) = out {
            let _ = h.write_all(bytes);
        }
    }

    /// Semihosting writes are synchronous: nothing to flush.
    pub fn flush() {}
}

/// SEGGER RTT, one up channel (the layout `probe-rs` looks for at the `_SEGGER_RTT` symbol).
#[cfg(feature = "rtt")]
mod sink {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// Bytes of the ring buffer.
    const SIZE: usize = 1024;
    /// Channel mode bits; probe-rs sets "block if full" when it attaches.
    const MODE_MASK: u32 = 0b11;
    const MODE_BLOCK_IF_FULL: u32 = 2;
    const MODE_NON_BLOCKING_TRIM: u32 = 1;

    #[repr(C)]
    struct Channel {
        name: *const u8,
        buffer: *mut u8,
        size: u32,
        /// Written by the target.
        write: AtomicU32,
        /// Written by the host.
        read: AtomicU32,
        flags: AtomicU32,
    }

    #[repr(C)]
    struct Header {
        id: [u8; 16],
        max_up_channels: u32,
        max_down_channels: u32,
        up: Channel,
    }

    // SAFETY: the raw pointers point to statics; the cursors are atomics shared with the host.
    unsafe impl Sync for Header {}

    struct Buffer(UnsafeCell<[u8; SIZE]>);

    // SAFETY: written only by the logger with interrupts masked, read by the debug probe.
    unsafe impl Sync for Buffer {}

    #[link_section = ".uninit.microdnn-rtt.BUFFER"]
    static BUFFER: Buffer = Buffer(UnsafeCell::new([0; SIZE]));

    #[link_section = ".data.microdnn-rtt.NAME"]
    static NAME: [u8; 6] = *b"defmt\0";

    #[no_mangle]
    static _SEGGER_RTT: Header = Header {
        id: *b"SEGGER RTT\0\0\0\0\0\0",
        max_up_channels: 1,
        max_down_channels: 0,
        up: Channel {
            name: NAME.as_ptr(),
            buffer: BUFFER.0.get() as *mut u8,
            size: SIZE as u32,
            write: AtomicU32::new(0),
            read: AtomicU32::new(0),
            flags: AtomicU32::new(MODE_NON_BLOCKING_TRIM),
        },
    };

    fn blocking() -> bool {
        _SEGGER_RTT.up.flags.load(Ordering::Relaxed) & MODE_MASK == MODE_BLOCK_IF_FULL
    }

    /// Free bytes in the ring (one byte stays empty to tell full from empty).
    fn available(read: usize, write: usize) -> usize {
        if read > write {
            read - write - 1
        } else {
            SIZE - 1 - write + read
        }
    }

    /// Writes `bytes` into the ring: waits for the host in blocking mode, otherwise drops what
    /// does not fit.
    pub fn write(mut bytes: &[u8]) {
        let ch = &_SEGGER_RTT.up;
        let block = blocking();
        while !bytes.is_empty() {
            // Cursors from the host are taken modulo the size, so a corrupted value cannot send
            // a write outside the buffer.
            let read = ch.read.load(Ordering::Relaxed) as usize % SIZE;
            let write = ch.write.load(Ordering::Acquire) as usize % SIZE;
            let n = available(read, write).min(bytes.len()).min(SIZE - write);
            if n == 0 {
                if block {
                    continue;
                }
                return;
            }
            let Some((now, rest)) = bytes.split_at_checked(n) else {
                return;
            };
            let base = BUFFER.0.get() as *mut u8;
            // SAFETY: `write + n <= SIZE`, so the bytes land inside BUFFER; the host reads only
            // up to the write cursor, which is published after the copy.
            unsafe { core::ptr::copy_nonoverlapping(now.as_ptr(), base.add(write), n) };
            ch.write
                .store(((write + n) % SIZE) as u32, Ordering::Release);
            bytes = rest;
        }
    }

    /// Waits until the host has read everything (only when it is attached, blocking mode).
    pub fn flush() {
        if !blocking() {
            return;
        }
        let ch = &_SEGGER_RTT.up;
        while ch.read.load(Ordering::Relaxed) != ch.write.load(Ordering::Relaxed) {}
    }
}
