//! STM32F405RG on `stm32f4xx-hal` (embedded-hal 1.0): QEMU `netduinoplus2` in CI, and real
//! boards with this chip (Netduino Plus 2, Adafruit Feather STM32F405, ...).
//!
//! Clock: the 16 MHz HSI without PLL, the reset state, taken as is (`constrain`, not `freeze`:
//! the HAL's clock-tree solver, with its panics, is not linked in). QEMU does not emulate the RCC
//! (a PLL or HSE start-up would wait forever for its ready bit), so the same firmware runs on the
//! emulator and on silicon; a board that wants 168 MHz chooses HSE + PLL in its own folder (see
//! `nucleo-f446re`).
//! Serial: USART1 on PA9 (TX) / PA10 (RX), 115200 baud, QEMU's first `-serial`.
//!
//! Under QEMU, SysTick counts at the machine's fixed 168 MHz system clock whatever the RCC says.

use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::serial::Serial as HalSerial;

use crate::nb_serial::NbSerial;
use crate::runtime;

/// The board's name (the folder's).
pub const NAME: &str = "stm32f405";
/// The clock that drives SysTick under QEMU `netduinoplus2` (its fixed 168 MHz system clock).
pub const SYSTICK_HZ: u32 = 168_000_000;
/// The host link's serial port: the HAL's USART1, adapted to `embedded-io`.
pub type Serial = NbSerial<HalSerial<pac::USART1>>;

/// Brings up the clocks (HSI, 16 MHz) and USART1 at 115200 baud. Call once.
pub fn serial() -> Serial {
    let Some(dp) = pac::Peripherals::take() else {
        defmt::error!("stm32f405: device peripherals already taken");
        runtime::exit(false)
    };
    // The reset clocks: HSI 16 MHz on every bus.
    let mut rcc = dp.RCC.constrain();
    let gpioa = dp.GPIOA.split(&mut rcc);
    match HalSerial::new(dp.USART1, (gpioa.pa9, gpioa.pa10), 115_200.bps(), &mut rcc) {
        Ok(serial) => NbSerial(serial),
        Err(_) => {
            defmt::error!("stm32f405: USART1 rejected 115200 baud at 16 MHz");
            runtime::exit(false)
        }
    }
}
