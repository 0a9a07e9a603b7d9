//! ARM MPS2 AN385 / AN386 / AN500 (Cortex-M3, M4F, M7): QEMU `mps2-an385`, `mps2-an386`,
//! `mps2-an500`. The three FPGA images share the memory map (`memory.x`), the 25 MHz clock and
//! the CMSDK APB UART0 at 0x4000_4000.

use crate::cmsdk_uart::CmsdkUart;

/// The board's name (the folder's).
pub const NAME: &str = "mps2";
/// Processor clock, which drives SysTick (25 MHz on all three images).
pub const SYSTICK_HZ: u32 = 25_000_000;
/// The host link's serial port.
pub type Serial = CmsdkUart;

/// UART0 of the MPS2 boards.
const UART0: usize = 0x4000_4000;

/// Brings up the host serial port (UART0, 115200 baud). Call once.
pub fn serial() -> Serial {
    // SAFETY: UART0 of the MPS2 AN385/AN386/AN500 images is a CMSDK APB UART at 0x4000_4000,
    // always mapped; this function is called once per program, so no other value drives it.
    unsafe { CmsdkUart::new(UART0, SYSTICK_HZ, 115_200) }
}
