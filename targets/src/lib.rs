//! # microdnn-targets
//!
//! Where microdnn runs, written down once. Everything that builds, emulates or sizes the firmware
//! for a board reads it from here: `microdnn eval --target NAME` (the host crate), the end-to-end
//! test (`tests/e2e.rs`) and `cargo xtask` (demo, test, bench-mcu).
//!
//! - [`TARGETS`]: the board table (name, core, Rust target triple and flags, the firmware's board
//!   folder, how it runs: a QEMU machine or a debug probe). Memory sizes come from the board's own
//!   `firmware/boards/BOARD/memory.x`, so they cannot disagree with the linker.
//! - [`qemu`]: the one QEMU command line.
//! - [`firmware`]: the one way to build the firmware (with a model compiled in, or not).
//! - [`fit`]: whether a model fits a target's flash and RAM, decided before building.
//! - [`rustup`]: adds the thumb targets and components the pinned toolchain lacks.
//!
//! Adding a board: a folder `firmware/boards/BOARD/` (`mod.rs` with its clock and serial port,
//! `memory.x`) and one line in [`TARGETS`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::path::{Path, PathBuf};

pub mod cost;
pub mod firmware;
pub mod fit;
pub mod qemu;
pub mod rustup;

/// How a target's firmware runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// Emulated: `qemu-system-arm -machine MACHINE -cpu CPU`.
    Qemu {
        /// QEMU machine (`-machine`).
        machine: &'static str,
        /// QEMU CPU (`-cpu`).
        cpu: &'static str,
    },
    /// A real board behind a debug probe: `probe-rs run --chip CHIP ELF` (defmt over RTT).
    ProbeRs {
        /// The chip name probe-rs knows (`probe-rs chip list`).
        chip: &'static str,
    },
}

/// One place microdnn runs: a core on a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The name users type (`--target NAME`).
    pub name: &'static str,
    /// The processor, for people.
    pub core: &'static str,
    /// The board or machine, for people.
    pub board_name: &'static str,
    /// Rust target triple.
    pub triple: &'static str,
    /// Extra `rustc` flags (for example `-C target-cpu=cortex-m55` for Helium).
    pub rustflags: &'static [&'static str],
    /// The firmware's board folder: `firmware/boards/BOARD/`.
    pub board: &'static str,
    /// Cargo features of the firmware this board needs (its HAL, its log transport).
    pub features: &'static [&'static str],
    /// How it runs.
    pub runner: Runner,
    /// Processor clock that drives SysTick, in Hz (the firmware's board module has the same
    /// constant; instruction counts use it).
    pub systick_hz: u32,
    /// The serial port the host link uses, for people.
    pub serial: &'static str,
}

/// The boards: one line each. The first six are the Cortex-M cores of `cargo xtask test`, the
/// seventh a real STM32 HAL (`stm32f4xx-hal`) on QEMU's STM32F405 board; the last runs on real
/// hardware only.
pub const TARGETS: &[Target] = &[
    Target {
        name: "cortex-m0",
        core: "Cortex-M0 (soft float)",
        board_name: "BBC micro:bit (nRF51822)",
        triple: "thumbv6m-none-eabi",
        rustflags: &[],
        board: "microbit",
        features: &[],
        runner: Runner::Qemu {
            machine: "microbit",
            cpu: "cortex-m0",
        },
        systick_hz: 16_000_000,
        serial: "nRF51 UART (0x4000_2000)",
    },
    Target {
        name: "cortex-m3",
        core: "Cortex-M3 (soft float)",
        board_name: "ARM MPS2 AN385",
        triple: "thumbv7m-none-eabi",
        rustflags: &[],
        board: "mps2",
        features: &[],
        runner: Runner::Qemu {
            machine: "mps2-an385",
            cpu: "cortex-m3",
        },
        systick_hz: 25_000_000,
        serial: "CMSDK APB UART0 (0x4000_4000)",
    },
    Target {
        name: "cortex-m4f",
        core: "Cortex-M4F",
        board_name: "ARM MPS2 AN386",
        triple: "thumbv7em-none-eabihf",
        rustflags: &[],
        board: "mps2",
        features: &[],
        runner: Runner::Qemu {
            machine: "mps2-an386",
            cpu: "cortex-m4",
        },
        systick_hz: 25_000_000,
        serial: "CMSDK APB UART0 (0x4000_4000)",
    },
    Target {
        name: "cortex-m7",
        core: "Cortex-M7",
        board_name: "ARM MPS2 AN500",
        triple: "thumbv7em-none-eabihf",
        rustflags: &[],
        board: "mps2",
        features: &[],
        runner: Runner::Qemu {
            machine: "mps2-an500",
            cpu: "cortex-m7",
        },
        systick_hz: 25_000_000,
        serial: "CMSDK APB UART0 (0x4000_4000)",
    },
    Target {
        name: "cortex-m33",
        core: "Cortex-M33",
        board_name: "ARM MPS2 AN505 (secure)",
        triple: "thumbv8m.main-none-eabihf",
        // The DSP extension, which Armv8-M Mainline makes optional (QEMU's Cortex-M33 has
        // it): the int8 kernel's `SMLAD` loop needs it (`cfg(microdnn_dsp)`, set by the core's
        // build script from this flag). Not `target-cpu=cortex-m33`, whose scheduling model
        // makes LLVM compile the f32 kernel into 3.39 instructions per MAC instead of 2.39.
        rustflags: &["-C", "target-feature=+dsp"],
        board: "mps2-an505",
        features: &[],
        runner: Runner::Qemu {
            machine: "mps2-an505",
            cpu: "cortex-m33",
        },
        systick_hz: 20_000_000,
        serial: "CMSDK APB UART0 (secure alias 0x5020_0000)",
    },
    Target {
        name: "cortex-m55",
        core: "Cortex-M55 (Helium)",
        board_name: "ARM MPS3 AN547 (secure)",
        triple: "thumbv8m.main-none-eabihf",
        // Helium's floating-point lanes flush subnormals to zero: only the kernel's audited loop
        // uses them (and recomputes a block when a flush is flagged); LLVM's vectorisers,
        // which would put any other f32 code on them, are off.
        rustflags: &[
            "-C",
            "target-cpu=cortex-m55",
            "-C",
            "no-vectorize-loops",
            "-C",
            "no-vectorize-slp",
        ],
        board: "mps3-an547",
        features: &[],
        runner: Runner::Qemu {
            machine: "mps3-an547",
            cpu: "cortex-m55",
        },
        systick_hz: 32_000_000,
        serial: "CMSDK APB UART0 (secure alias 0x5930_3000)",
    },
    Target {
        name: "stm32f405",
        core: "STM32F405 (Cortex-M4F), stm32f4xx-hal",
        board_name: "Netduino Plus 2 (QEMU netduinoplus2)",
        triple: "thumbv7em-none-eabihf",
        rustflags: &[],
        board: "stm32f405",
        features: &["stm32f405"],
        runner: Runner::Qemu {
            machine: "netduinoplus2",
            cpu: "cortex-m4",
        },
        systick_hz: 168_000_000,
        serial: "USART1 (PA9/PA10), 115200 baud, HSI clock",
    },
    Target {
        name: "nucleo-f446re",
        core: "STM32F446RE (Cortex-M4F), stm32f4xx-hal",
        board_name: "ST Nucleo-F446RE (real board)",
        triple: "thumbv7em-none-eabihf",
        rustflags: &[],
        board: "nucleo-f446re",
        features: &["stm32f446", "rtt"],
        runner: Runner::ProbeRs {
            chip: "STM32F446RETx",
        },
        systick_hz: 168_000_000,
        serial: "USART2 (PA2/PA3) = ST-LINK virtual COM port (/dev/ttyACM0), 115200 baud",
    },
];

/// The names of the targets `cargo xtask test` runs in QEMU (every QEMU target).
pub fn qemu_targets() -> impl Iterator<Item = &'static Target> {
    TARGETS
        .iter()
        .filter(|t| matches!(t.runner, Runner::Qemu { .. }))
}

/// The target `microdnn eval --device qemu` and `cargo xtask demo` use unless told otherwise.
pub const DEFAULT_TARGET: &str = "cortex-m4f";

/// An unknown `--target` name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTarget(pub String);

impl fmt::Display for UnknownTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown target `{}`; known targets:", self.0)?;
        for t in TARGETS {
            write!(f, "\n  {:<14} {} on {}", t.name, t.core, t.board_name)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownTarget {}

/// The target called `name`.
pub fn find(name: &str) -> Result<&'static Target, UnknownTarget> {
    TARGETS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| UnknownTarget(name.to_owned()))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("targets/ lives one level below the repository root")
        .to_path_buf()
}

/// Flash and RAM of a board, as its `memory.x` gives them to the linker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Bytes of the `FLASH` region.
    pub flash_bytes: u64,
    /// Bytes of the `RAM` region.
    pub ram_bytes: u64,
}

impl Target {
    /// The board's `memory.x`.
    pub fn memory_x(&self) -> PathBuf {
        firmware::firmware_dir()
            .join("boards")
            .join(self.board)
            .join("memory.x")
    }

    /// Flash and RAM sizes, read from the board's `memory.x`.
    pub fn memory(&self) -> Result<Memory, String> {
        let path = self.memory_x();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let region = |name| {
            memory_region_len(&text, name)
                .ok_or_else(|| format!("{}: no `{name}` region with a LENGTH", path.display()))
        };
        Ok(Memory {
            flash_bytes: region("FLASH")?,
            ram_bytes: region("RAM")?,
        })
    }

    /// QEMU machine and CPU, if the target is emulated.
    pub fn qemu_machine(&self) -> Option<(&'static str, &'static str)> {
        match self.runner {
            Runner::Qemu { machine, cpu } => Some((machine, cpu)),
            Runner::ProbeRs { .. } => None,
        }
    }

    /// A name for everything that determines the firmware binary (board, triple, flags,
    /// features): targets that share it share one build (the Cortex-M4F and M7 boards run the
    /// same ELF).
    pub fn build_id(&self) -> String {
        let mut id = format!("{}-{}", self.board, self.triple);
        for flag in self.rustflags {
            if let Some(cpu) = flag.strip_prefix("target-cpu=") {
                id.push('-');
                id.push_str(cpu);
            }
        }
        for f in self.features {
            id.push('-');
            id.push_str(f);
        }
        id
    }
}

/// `LENGTH` of a region of a GNU ld `MEMORY` block, in bytes (`4M`, `256K`, `0x4000`, `1024`).
pub fn memory_region_len(memory_x: &str, region: &str) -> Option<u64> {
    memory_x.lines().find_map(|line| {
        let line = line.split("/*").next()?.trim();
        let (name, rest) = line.split_once(':')?;
        if name.split_whitespace().next() != Some(region) {
            return None;
        }
        let len = rest
            .split("LENGTH")
            .nth(1)?
            .trim_start()
            .strip_prefix('=')?;
        let len = len.trim().trim_end_matches(',').trim();
        let (digits, scale) = match len.as_bytes().last()? {
            b'K' | b'k' => (&len[..len.len() - 1], 1024),
            b'M' | b'm' => (&len[..len.len() - 1], 1024 * 1024),
            _ => (len, 1),
        };
        let value = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => digits.trim().parse().ok()?,
        };
        Some(value * scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert_eq!(find(t.name).unwrap(), t);
            assert!(TARGETS[..i].iter().all(|o| o.name != t.name));
        }
    }

    #[test]
    fn unknown_target_lists_the_known_ones() {
        let e = find("cortex-m99").unwrap_err().to_string();
        assert!(e.starts_with("unknown target `cortex-m99`"), "{e}");
        for t in TARGETS {
            assert!(e.contains(t.name), "{e}");
        }
    }

    #[test]
    fn memory_x_lengths_parse() {
        let text = "MEMORY\n{\n  /* code */\n  FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K /* sram */\n  X : ORIGIN = 0, LENGTH = 0x100\n}\n";
        assert_eq!(memory_region_len(text, "FLASH"), Some(4 << 20));
        assert_eq!(memory_region_len(text, "RAM"), Some(16 << 10));
        assert_eq!(memory_region_len(text, "X"), Some(256));
        assert_eq!(memory_region_len(text, "CCM"), None);
    }

    #[test]
    fn every_board_has_a_memory_map() {
        for t in TARGETS {
            let m = t.memory().unwrap();
            assert!(
                m.flash_bytes >= 64 << 10 && m.ram_bytes >= 16 << 10,
                "{}: {m:?}",
                t.name
            );
        }
        assert_eq!(
            find("cortex-m0").unwrap().memory().unwrap(),
            Memory {
                flash_bytes: 256 << 10,
                ram_bytes: 16 << 10
            }
        );
    }

    #[test]
    fn m4f_and_m7_share_a_build_m55_does_not() {
        let id = |n| find(n).unwrap().build_id();
        assert_eq!(id("cortex-m4f"), id("cortex-m7"));
        assert_ne!(id("cortex-m33"), id("cortex-m55"));
        assert_ne!(id("cortex-m4f"), id("stm32f405"));
    }
}
