//! Installing QEMU, and running firmware in it with semihosting (the command line itself is
//! `microdnn_targets::qemu::command`, shared with the host crate).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use microdnn_targets::qemu::{self as tq, QEMU};
use microdnn_targets::Target;

use crate::defmt_log::{self, LogLine};

/// Makes sure `qemu-system-arm` can be run: installs it with apt when it is missing and we are
/// root (as on CI); otherwise stops with what to install.
pub fn ensure_installed() -> Result<()> {
    if tq::version().is_some() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{QEMU} is not installed. Install it with `sudo apt-get install qemu-system-arm` \
             (Debian/Ubuntu; QEMU >= 7 with the mps2, mps3-an547, microbit and netduinoplus2 \
             machines), then rerun"
        );
    }
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!("{QEMU} is not installed and apt-get is not available: install QEMU (>= 7, with the `mps2-an386` machine) by hand");
    }
    println!("xtask: {QEMU} not found; installing it with apt-get (running as root)");
    for args in [
        &["update"][..],
        &[
            "install",
            "-y",
            "--no-install-recommends",
            "qemu-system-arm",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
    }
    match tq::version() {
        Some(v) => {
            println!("xtask: installed {v}");
            Ok(())
        }
        None => bail!("apt-get installed qemu-system-arm but `{QEMU} --version` still fails"),
    }
}

fn is_root() -> bool {
    // The effective uid is the third field of `Uid:` in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// How to run a firmware ELF.
pub struct RunOptions {
    /// Run with `-icount shift=3,sleep=off` (deterministic instruction counting).
    pub icount: bool,
    /// Kill the emulator after this long.
    pub timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            icount: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// The outcome of one emulator run.
pub struct Run {
    /// The ELF that ran.
    pub elf: PathBuf,
    /// Exit status (`None`: killed at the timeout).
    pub status: Option<ExitStatus>,
    /// Decoded defmt log lines, in order.
    pub log: Vec<LogLine>,
    /// Plain text the firmware or QEMU wrote to stderr (fatal reports).
    pub stderr: String,
    /// Problems decoding the log (malformed or truncated frames).
    pub decode_problems: Vec<String>,
    /// How long the run took.
    pub elapsed: Duration,
    timeout: Duration,
}

impl Run {
    /// Prints the decoded log, then anything written to stderr.
    pub fn print_log(&self) {
        for line in &self.log {
            println!("{line}");
        }
        for p in &self.decode_problems {
            println!("xtask: defmt decoding: {p}");
        }
        if !self.stderr.trim().is_empty() {
            eprintln!("{}", self.stderr.trim_end());
        }
    }

    /// `Ok` if the firmware exited with success.
    pub fn check(&self) -> Result<()> {
        let name = self
            .elf
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.status {
            None => bail!(
                "firmware `{name}` did not finish within {:?} (QEMU killed)",
                self.timeout
            ),
            Some(s) if !s.success() => bail!("firmware `{name}` exited with failure ({s})"),
            Some(_) if !self.decode_problems.is_empty() => {
                bail!("firmware `{name}` log could not be fully decoded")
            }
            Some(_) => Ok(()),
        }
    }
}

/// Runs an ELF in QEMU under a timeout and decodes its defmt log.
pub fn run(target: &Target, elf: &Path, opts: &RunOptions) -> Result<Run> {
    let elf_bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let options = tq::Options {
        icount: opts.icount,
        serial: tq::Serial::None,
    };
    let Some(mut cmd) = tq::command(target, elf, &options) else {
        bail!(
            "target `{}` runs on hardware only (no QEMU machine)",
            target.name
        );
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {QEMU}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let out = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    let (log, decode_problems) = defmt_log::decode(&elf_bytes, &out)?;
    Ok(Run {
        elf: elf.to_path_buf(),
        status,
        log,
        stderr: String::from_utf8_lossy(&err).into_owned(),
        decode_problems,
        elapsed,
        timeout: opts.timeout,
    })
}
