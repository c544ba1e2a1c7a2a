//! What making a bulk run's "sending" line durable costs per chunk: one
//! sending line of a 100-lead chunk written and flushed to a file (what the
//! record did before), against the same line written, flushed and synced
//! with `File::sync_data` (what `record_sink.rs` does now when the record
//! is a regular file), in the same run, to a file in a temporary directory
//! (`TMPDIR`, else `/tmp`: put it on the disk the records go to).
//!
//! The bench writes through `std::fs::File` itself rather than including
//! the command's source (a member's bench sees no binary's modules); the
//! record's sync is that very call on a handle to the same file.
//!
//! Run with `cargo bench -p marketo-campaign-cli --bench record_sync --
//! --warm-up-time 1 --measurement-time 3`. Compare with Marketo's pace:
//! 5 calls a second, 200 ms a chunk.

use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion};

/// A sending line as the record writes it for a 100-lead chunk.
fn sending_line() -> Vec<u8> {
    let line = serde_json::json!({
        "chunk": 1234,
        "status": "sending",
        "first_lead": "EMAIL:first.last123400@company.com",
        "leads": 100,
        "digest": "0a3f86b1973e8d1d3e2bfc815867026f7857d60d",
        "request": "809007ab0d03b6ed203cc9f86567d5e58f3d0779",
    });
    let mut text = line.to_string().into_bytes();
    text.push(b'\n');
    text
}

fn record_sync(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("marketo-record-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let line = sending_line();
    let open = |name: &str| std::fs::File::create(dir.join(name)).expect("a record file");
    let mut group = c.benchmark_group("record_sync");
    let mut flushed = open("flushed.jsonl");
    group.bench_function("sending_line_flushed", |b| {
        b.iter(|| {
            flushed.write_all(black_box(&line)).expect("written");
            flushed.flush().expect("flushed");
        });
    });
    let mut synced = open("synced.jsonl");
    group.bench_function("sending_line_synced", |b| {
        b.iter(|| {
            synced.write_all(black_box(&line)).expect("written");
            synced.flush().expect("flushed");
            synced.sync_data().expect("synced");
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, record_sync);
criterion_main!(benches);
