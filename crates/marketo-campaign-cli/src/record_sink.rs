//! Where a bulk run's record goes, and how its "sending" lines are made
//! durable before their chunk is sent.
//!
//! What a line survives once [`RecordSink::sync`] has returned:
//! - written and flushed (always): it is in the operating system's hands,
//!   so it survives the process crashing or being killed;
//! - synced (`sync_data`, when the record is a regular file, e.g.
//!   `--json > run.jsonl`): it is on the disk, so it survives a power cut
//!   or a kernel crash too (as far as the disk keeps its promise to
//!   `fdatasync`);
//! - a pipe or a terminal (`--json | tee run.jsonl`) cannot be synced:
//!   what the reader does with the line is its own business, and the line
//!   survives only what the reader's file does.
//!
//! The bench `record_sync` measures what the sync costs per chunk.

use std::fs::File;
use std::io::{self, Write};

/// Whether [`RecordSink::sync`] put the lines on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced to the disk: survives a power cut.
    Synced,
    /// Flushed to the operating system only (a pipe, a terminal):
    /// survives the process, not a power cut.
    Flushed,
}

/// A writer for the run's record whose flushed lines can be made durable.
pub(crate) trait RecordSink: Write + Send {
    /// Makes every line written and flushed so far durable, where the
    /// destination can be synced (a regular file: `sync_data`); says which.
    /// An error means the lines may not be on the disk: the run stops
    /// before sending the chunk.
    fn sync(&mut self) -> io::Result<Durability>;
}

/// A writer and, when it ends in a regular file, a handle to that file to
/// sync it with.
pub(crate) struct Synced<W> {
    out: W,
    file: Option<File>,
}

impl<W> Synced<W> {
    /// Whether the record can be synced (it is a regular file).
    #[cfg(test)]
    pub(crate) fn syncs(&self) -> bool {
        self.file.is_some()
    }
}

/// `file` if it is a regular file (a pipe, a terminal, a character device
/// cannot be synced).
fn regular(file: File) -> Option<File> {
    file.metadata()
        .is_ok_and(|m| m.file_type().is_file())
        .then_some(file)
}

impl Synced<io::Stdout> {
    /// Standard output; synced when it is a regular file (`> run.jsonl`).
    pub(crate) fn stdout() -> Self {
        let out = io::stdout();
        Synced {
            file: stdout_file(&out),
            out,
        }
    }
}

/// A handle to the file behind stdout (a duplicate of its descriptor: a
/// sync through it syncs the same file), if that is a regular file.
#[cfg(unix)]
fn stdout_file(out: &io::Stdout) -> Option<File> {
    use std::os::fd::AsFd;
    let fd = out.as_fd().try_clone_to_owned().ok()?;
    regular(File::from(fd))
}

/// Elsewhere, stdout is not synced.
#[cfg(not(unix))]
fn stdout_file(_: &io::Stdout) -> Option<File> {
    None
}

impl Synced<File> {
    /// A file; synced when it is a regular file.
    #[cfg(test)]
    pub(crate) fn file(out: File) -> io::Result<Self> {
        let file = regular(out.try_clone()?);
        Ok(Synced { out, file })
    }
}

impl<W: Write> Write for Synced<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write + Send> RecordSink for Synced<W> {
    fn sync(&mut self) -> io::Result<Durability> {
        match &self.file {
            Some(file) => file.sync_data().map(|()| Durability::Synced),
            None => Ok(Durability::Flushed),
        }
    }
}
