//! Issue 18's defects, seen by running the binary as a new user would.

use crate::common::BIN;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mc-defects-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Dir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("a temporary file");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

/// `--json > run.jsonl`: the record is a regular file, whose "sending"
/// lines are synced before their chunk is sent; the run goes as before.
#[test]
fn a_record_redirected_to_a_file_is_written_and_synced() {
    let dir = Dir::new("record-file");
    // The embedded sandbox's two leads, 150 keys: two chunks.
    let leads: String = (0..150)
        .map(|i| format!("IDNUM:{}\n", 1_002_200 + i % 2))
        .collect();
    let leads = dir.file("leads.txt", &leads);
    let record = dir.path("run.jsonl");
    let out = std::fs::File::create(&record).expect("the record file");
    let status = Command::new(BIN)
        .args([
            "request",
            "--sandbox",
            "--backend",
            "soap",
            "--campaign-id",
            "4496",
        ])
        .args(["--leads-file", text(&leads), "--json"])
        .stdout(out)
        .stderr(Stdio::null())
        .status()
        .expect("the binary runs");
    let lines = std::fs::read_to_string(&record).expect("the record");
    assert_eq!(status.code(), Some(0), "{lines}");
    let sending = lines
        .lines()
        .filter(|l| l.contains(r#""status":"sending""#));
    assert_eq!(sending.count(), 2, "{lines}");
    assert!(lines.contains(r#""complete":true"#), "{lines}");
}

#[allow(dead_code)] // the next items' tests use it
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}
