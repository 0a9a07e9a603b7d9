//! The nRF51's UART (not ARM's CMSDK UART), polled, behind the `embedded-io` traits.
//!
//! Registers (nRF51 Series Reference Manual, "UART"):
//!
//! ```text
//! 0x000 TASKS_STARTRX   0x008 TASKS_STARTTX
//! 0x108 EVENTS_RXDRDY   a byte is waiting in RXD     0x11C EVENTS_TXDRDY  TXD was sent
//! 0x124 EVENTS_ERROR    0x480 ERRORSRC (write 1 to clear)
//! 0x500 ENABLE (4)      0x50C PSELTXD  0x514 PSELRXD  0x518 RXD  0x51C TXD  0x524 BAUDRATE
//! ```
//!
//! Receiving: clear EVENTS_RXDRDY, then read RXD (the order the manual requires, so an event for
//! the next byte is never lost). Sending: write TXD, wait for EVENTS_TXDRDY, clear it.

const BASE: usize = 0x4000_2000;
const TASKS_STARTRX: usize = 0x000;
const TASKS_STARTTX: usize = 0x008;
const EVENTS_RXDRDY: usize = 0x108;
const EVENTS_TXDRDY: usize = 0x11C;
const EVENTS_ERROR: usize = 0x124;
const ERRORSRC: usize = 0x480;
const ENABLE: usize = 0x500;
const PSELTXD: usize = 0x50C;
const PSELRXD: usize = 0x514;
const RXD: usize = 0x518;
const TXD: usize = 0x51C;
const BAUDRATE: usize = 0x524;

const ENABLE_UART: u32 = 4;
const BAUD_115200: u32 = 0x01D7_E000;

/// The nRF51 UART0, polled (no interrupts, no flow control).
pub struct Nrf51Uart {
    _private: (),
}

impl Nrf51Uart {
    /// Takes UART0, routes it to GPIO pins `tx` and `rx`, and starts it at 115200 baud.
    ///
    /// # Safety
    /// Only one value may drive the UART: create it once, at start-up.
    pub unsafe fn new(tx: u32, rx: u32) -> Self {
        let u = Nrf51Uart { _private: () };
        u.write(PSELTXD, tx);
        u.write(PSELRXD, rx);
        u.write(BAUDRATE, BAUD_115200);
        u.write(ENABLE, ENABLE_UART);
        u.write(EVENTS_TXDRDY, 0);
        u.write(EVENTS_RXDRDY, 0);
        u.write(TASKS_STARTTX, 1);
        u.write(TASKS_STARTRX, 1);
        u
    }

    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `BASE + offset` is one of the documented, 4-byte-aligned registers of the
        // nRF51's UART0, always mapped; volatile reads of device registers have no other effect
        // on Rust-visible memory.
        unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`; writing these registers only affects the UART.
        unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read(EVENTS_RXDRDY) == 0 {
            return None;
        }
        self.write(EVENTS_RXDRDY, 0);
        Some(self.read(RXD) as u8)
    }

    /// Sends one byte and waits until it has gone.
    pub fn write_byte(&mut self, b: u8) {
        self.write(TXD, u32::from(b));
        while self.read(EVENTS_TXDRDY) == 0 {}
        self.write(EVENTS_TXDRDY, 0);
    }

    /// Clears a receive error (overrun, framing); returns whether there was one.
    pub fn clear_overruns(&mut self) -> bool {
        if self.read(EVENTS_ERROR) == 0 {
            return false;
        }
        let source = self.read(ERRORSRC);
        self.write(ERRORSRC, source);
        self.write(EVENTS_ERROR, 0);
        true
    }
}

impl embedded_io::ErrorType for Nrf51Uart {
    type Error = crate::serial::Overrun;
}

impl embedded_io::Read for Nrf51Uart {
    /// Blocks until at least one byte has arrived, then returns what is available; an error if
    /// received bytes were lost since the last call (the flag is cleared).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.clear_overruns() {
            return Err(crate::serial::Overrun);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        buf[0] = loop {
            if let Some(b) = self.try_read() {
                break b;
            }
        };
        let mut n = 1;
        while n < buf.len() {
            match self.try_read() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }
}

impl embedded_io::Write for Nrf51Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &b in buf {
            self.write_byte(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
