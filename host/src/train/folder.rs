//! A run folder while a run writes into it: locked (one writer at a time), cleared of what a
//! killed process left behind, and never silently replaced.
//!
//! The lock is an advisory lock on `.microdnn.lock` ([`std::fs::File::try_lock`]): the system
//! releases it when the process ends, however it ends, so a killed run never leaves the folder
//! locked.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::model::checkpoint::{self, MODEL_FILE};
use crate::train::{CONFIG_FILE, HISTORY_FILE, METRICS_FILE, TRAIN_STATE_FILE};

/// The lock file of a run folder.
pub const LOCK_FILE: &str = ".microdnn.lock";

/// The files a run writes into its folder.
pub const RUN_FILES: [&str; 5] = [
    CONFIG_FILE,
    MODEL_FILE,
    TRAIN_STATE_FILE,
    METRICS_FILE,
    HISTORY_FILE,
];

/// Why a run cannot write into its folder.
#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    /// The folder already holds a run and the run was not asked to replace it.
    #[error(
        "{} already holds a run ({}): use --resume to continue it, --force to replace it, or \
         another --out",
        dir.display(),
        files.join(", ")
    )]
    Exists {
        /// The folder.
        dir: PathBuf,
        /// The run files found.
        files: Vec<String>,
    },
    /// Another process writes into the folder.
    #[error("{}: another microdnn process is writing into this run folder", dir.display())]
    Locked {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder cannot be created, locked or cleaned.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

/// How a run uses its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// A new run: the folder must not hold one, unless `replace` (its files are then removed).
    Fresh {
        /// Replace a run already there.
        replace: bool,
    },
    /// Continue the run in the folder.
    Resume,
}

/// A run folder locked for writing; the lock is released when this is dropped.
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    lock: Option<File>,
}

impl RunFolder {
    /// Creates the folder if needed, takes its lock, removes stale temporary files (see
    /// [`checkpoint::remove_stale_temporaries`]) and, for a fresh run, checks that it holds no
    /// run (or removes it, when replacing). Returns the folder and the temporaries removed.
    pub fn open(dir: &Path, how: Use) -> Result<(Self, Vec<String>), RunFolderError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| RunFolderError::Io { path, error }
        };
        if dir.exists() && !dir.is_dir() {
            return Err(io(dir)(std::io::Error::other("exists and is not a folder")));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RunFolderError::Locked {
                    dir: dir.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let folder = Self {
            dir: dir.to_path_buf(),
            lock: Some(lock),
        };
        let removed = checkpoint::remove_stale_temporaries(dir).map_err(io(dir))?;
        if let Use::Fresh { replace } = how {
            let files = folder.run_files();
            if !files.is_empty() && !replace {
                return Err(RunFolderError::Exists {
                    dir: dir.to_path_buf(),
                    files,
                });
            }
            for f in files {
                let p = dir.join(&f);
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok((folder, removed))
    }

    /// The run files present in the folder.
    pub fn run_files(&self) -> Vec<String> {
        RUN_FILES
            .iter()
            .filter(|f| self.dir.join(f).exists())
            .map(|f| f.to_string())
            .collect()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        // Remove the lock file while still holding the lock: a process waiting on it fails its
        // try_lock and reports the folder busy; the next run creates a fresh one.
        let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
        drop(self.lock.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_has_one_writer_and_a_run_is_not_replaced_silently() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let (a, _) = RunFolder::open(&run, Use::Fresh { replace: false }).unwrap();
        let e = RunFolder::open(&run, Use::Fresh { replace: true }).unwrap_err();
        assert!(matches!(e, RunFolderError::Locked { .. }), "{e}");
        std::fs::write(run.join(CONFIG_FILE), "x").unwrap();
        std::fs::write(run.join(".model.safetensors.tmp123"), "partial").unwrap();
        std::fs::write(run.join(".notes.tmpx"), "not ours").unwrap();
        drop(a);
        assert!(!run.join(LOCK_FILE).exists());
        let e = RunFolder::open(&run, Use::Fresh { replace: false }).unwrap_err();
        assert!(
            e.to_string().contains("already holds a run (config.toml)"),
            "{e}"
        );
        // The failed open still cleared the killed writer's temporary file.
        assert!(!run.join(".model.safetensors.tmp123").exists());
        assert!(run.join(".notes.tmpx").exists());
        let (b, _) = RunFolder::open(&run, Use::Fresh { replace: true }).unwrap();
        assert!(b.run_files().is_empty());
        drop(b);
        let (_c, removed) = RunFolder::open(&run, Use::Resume).unwrap();
        assert!(removed.is_empty());
    }
}
