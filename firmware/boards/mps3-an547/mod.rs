//! ARM MPS3 AN547 (Cortex-M55 with Helium, SSE-300): QEMU `mps3-an547`. The core boots in the
//! secure state: the TCMs and peripherals are used through their secure aliases. SysTick runs
//! at 32 MHz; the host link is the CMSDK APB UART0 (secure alias 0x5930_3000, 25 MHz clock).

use crate::cmsdk_uart::CmsdkUart;

/// The board's name (the folder's).
pub const NAME: &str = "mps3-an547";
/// Processor clock, which drives SysTick.
pub const SYSTICK_HZ: u32 = 32_000_000;
/// The host link's serial port.
pub type Serial = CmsdkUart;

/// UART0, secure alias (the non-secure one is 0x4930_3000).
const UART0: usize = 0x5930_3000;
/// The UARTs' peripheral clock.
const UART_CLOCK_HZ: u32 = 25_000_000;

/// Brings up the host serial port (UART0, 115200 baud). Call once.
pub fn serial() -> Serial {
    // SAFETY: UART0 of the AN547 image is a CMSDK APB UART whose secure alias is 0x5930_3000;
    // the program runs secure and the peripheral protection controllers are left at reset
    // (secure access allowed); called once per program, so no other value drives it.
    unsafe { CmsdkUart::new(UART0, UART_CLOCK_HZ, 115_200) }
}
