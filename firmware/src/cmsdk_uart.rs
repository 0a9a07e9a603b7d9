//! The CMSDK APB UART of ARM's MPS2/MPS3 boards (QEMU `mps2-an385/386/500/505`, `mps3-an547`),
//! behind the `embedded-io` traits.
//!
//! QEMU connects UART0 to the host with `-serial` (`stdio`, `tcp:...`, `unix:...`, `pipe:...`).
//! The protocol code ([`crate::server`]) only sees `embedded_io::Read + Write`, so another
//! board's UART driver (the nRF51's, or a HAL's) takes this one's place unchanged.
//!
//! Registers (ARM CMSDK technical reference, "APB UART"):
//!
//! ```text
//! 0x000 DATA      read: received byte, write: byte to send
//! 0x004 STATE     bit 0 TX buffer full, bit 1 RX buffer full, bit 2 TX overrun, bit 3 RX overrun
//! 0x008 CTRL      bit 0 TX enable, bit 1 RX enable
//! 0x010 BAUDDIV   clock divider (>= 16)
//! ```

const DATA: usize = 0x000;
const STATE: usize = 0x004;
const CTRL: usize = 0x008;
const BAUDDIV: usize = 0x010;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const STATE_OVERRUNS: u32 = 0b1100;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;

/// A CMSDK APB UART, polled (no interrupts).
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Takes the UART at `base`, clocked at `clock_hz`, and enables it at `baud` (QEMU ignores
    /// the rate; real silicon does not).
    ///
    /// # Safety
    /// `base` must be the address of a CMSDK APB UART, mapped (and accessible in the core's
    /// security state) for the program's whole life, and no other value may drive it: create
    /// it once, at start-up.
    pub unsafe fn new(base: usize, clock_hz: u32, baud: u32) -> Self {
        let u = CmsdkUart { base };
        u.write_reg(BAUDDIV, (clock_hz / baud.max(1)).max(16));
        u.write_reg(CTRL, CTRL_TX_EN | CTRL_RX_EN);
        u
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `base + offset` is one of the documented, 4-byte-aligned registers of the
        // UART at `base` (mapped for the program's whole life: the contract of `new`); volatile
        // reads of device registers have no other effect on Rust-visible memory.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`; writing these registers only affects the UART.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// A received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.read_reg(STATE) & STATE_RX_FULL != 0 {
            Some(self.read_reg(DATA) as u8)
        } else {
            None
        }
    }

    /// Sends one byte, waiting while the transmit buffer is full.
    pub fn write_byte(&mut self, b: u8) {
        while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
        self.write_reg(DATA, b as u32);
    }

    /// Clears overrun flags (write-one-to-clear); returns whether there were any.
    pub fn clear_overruns(&mut self) -> bool {
        let s = self.read_reg(STATE) & STATE_OVERRUNS;
        if s != 0 {
            self.write_reg(STATE, s);
        }
        s != 0
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = crate::serial::Overrun;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte has arrived, then returns what is available; an error if
    /// received bytes were lost since the last call (the flag is cleared).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.clear_overruns() {
            return Err(crate::serial::Overrun);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let first = loop {
            if let Some(b) = self.try_read() {
                break b;
            }
        };
        buf[0] = first;
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

impl embedded_io::Write for CmsdkUart {
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
