//! The one QEMU command line.
//!
//! Every emulated run (self-tests, benchmarks, `microdnn eval --device qemu`, the end-to-end
//! test) starts QEMU through [`command`]: the target's machine and CPU, semihosting on (the
//! firmware's defmt log on standard output, its exit code QEMU's), no monitor, and the first
//! serial port (the board's host link: CMSDK UART0, the nRF51 UART or the STM32's USART1)
//! where [`Serial`] says.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Runner, Target};

/// The QEMU program.
pub const QEMU: &str = "qemu-system-arm";

/// `-icount` shift of every measured run: each guest instruction advances the virtual clock by
/// 2^3 ns, so SysTick counts executed instructions exactly (see the firmware's `icount`).
pub const ICOUNT_SHIFT: u32 = 3;

/// Where the board's first serial port goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serial {
    /// Nowhere (`-serial none`).
    None,
    /// A Unix socket QEMU creates and waits on until a client connects.
    UnixSocket(PathBuf),
}

/// How to run an ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-icount shift=3,sleep=off`: deterministic instruction counts.
    pub icount: bool,
    /// The host link.
    pub serial: Serial,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            icount: false,
            serial: Serial::None,
        }
    }
}

/// The QEMU command that runs `elf` on `target`; `None` for a target that runs on hardware only.
pub fn command(target: &Target, elf: &Path, options: &Options) -> Option<Command> {
    let Runner::Qemu { machine, cpu } = target.runner else {
        return None;
    };
    let mut cmd = Command::new(QEMU);
    cmd.args(["-machine", machine, "-cpu", cpu])
        .args(["-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"]);
    if options.icount {
        cmd.args(["-icount", &format!("shift={ICOUNT_SHIFT},sleep=off")]);
    }
    match &options.serial {
        Serial::None => cmd.args(["-serial", "none"]),
        Serial::UnixSocket(path) => cmd
            .arg("-serial")
            .arg(format!("unix:{},server=on,wait=on", path.display())),
    };
    cmd.arg("-kernel").arg(elf);
    Some(cmd)
}

/// `qemu-system-arm --version`'s first line, if QEMU can be run.
pub fn version() -> Option<String> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::find;

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn machine_cpu_icount_and_socket() {
        let t = find("cortex-m55").unwrap();
        let opts = Options {
            icount: true,
            serial: Serial::UnixSocket("/tmp/x/uart.sock".into()),
        };
        let cmd = command(t, Path::new("/fw/eval"), &opts).unwrap();
        assert_eq!(cmd.get_program(), QEMU);
        let a = args(&cmd).join(" ");
        assert!(a.starts_with("-machine mps3-an547 -cpu cortex-m55 "), "{a}");
        assert!(a.contains("-icount shift=3,sleep=off"), "{a}");
        assert!(
            a.contains("-serial unix:/tmp/x/uart.sock,server=on,wait=on"),
            "{a}"
        );
        assert!(a.ends_with("-kernel /fw/eval"), "{a}");
        let plain = args(&command(t, Path::new("e"), &Options::default()).unwrap()).join(" ");
        assert!(
            !plain.contains("icount") && plain.contains("-serial none"),
            "{plain}"
        );
    }

    #[test]
    fn hardware_targets_have_no_qemu_command() {
        let t = find("nucleo-f446re").unwrap();
        assert!(command(t, Path::new("e"), &Options::default()).is_none());
    }
}
