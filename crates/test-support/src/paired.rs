//! Paired, interleaved timing shared by the round-trip benches
//! (`round_trip`, `bridge`): both sides of a group run in the same loop,
//! in alternating order, each call timed on its own; a bench reports only
//! its own side's times, and the group then prints the paired medians
//! (`paired ...` lines), the figure held against a target. See
//! benches/round_trip.rs for why.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

/// One side of a group: its bench id and the call it times.
pub struct Side<'a> {
    pub id: &'a str,
    pub call: &'a dyn Fn(),
}

/// How a group runs: its throughput, and what empties the sandbox's
/// journal (every `clear_every` pairs and between benches, outside timing).
pub struct Group<'a> {
    pub name: &'a str,
    pub throughput: Option<Throughput>,
    pub clear: &'a dyn Fn(),
    pub clear_every: u64,
}

fn timed(call: &dyn Fn()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Two benches over the same interleaved calls, then the paired statistics
/// of every call made.
pub fn paired_group(c: &mut Criterion, group: &Group<'_>, ours: Side<'_>, baseline: Side<'_>) {
    let pairs: RefCell<Vec<(Duration, Duration)>> = RefCell::default();
    let mut criterion_group = c.benchmark_group(group.name);
    if let Some(throughput) = &group.throughput {
        criterion_group.throughput(throughput.clone());
    }
    for (report_ours, id) in [(true, ours.id), (false, baseline.id)] {
        criterion_group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                (group.clear)();
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    if i % group.clear_every == group.clear_every - 1 {
                        (group.clear)();
                    }
                    // Alternate the order, so neither side always follows
                    // the other.
                    let (t_ours, t_base) = if i % 2 == 0 {
                        let t_ours = timed(ours.call);
                        (t_ours, timed(baseline.call))
                    } else {
                        let t_base = timed(baseline.call);
                        (timed(ours.call), t_base)
                    };
                    pairs.borrow_mut().push((t_ours, t_base));
                    total += if report_ours { t_ours } else { t_base };
                }
                total
            })
        });
    }
    criterion_group.finish();
    (group.clear)();
    print_pairs(group.name, ours.id, baseline.id, &pairs.into_inner());
}

fn print_pairs(name: &str, ours: &str, baseline: &str, pairs: &[(Duration, Duration)]) {
    if pairs.is_empty() {
        // The group was filtered out.
        return;
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let ours_us = median(pairs.iter().map(|p| micros(p.0)).collect());
    let base_us = median(pairs.iter().map(|p| micros(p.1)).collect());
    let ratio = median(
        pairs
            .iter()
            .map(|p| p.0.as_secs_f64() / p.1.as_secs_f64())
            .collect(),
    );
    println!(
        "paired {name}: {n} pairs; median {ours} {ours_us:.1} µs, {baseline} {base_us:.1} µs; \
         median per-pair ratio {ratio:.3} (overhead {:+.1}%), ratio of medians {:.3}\n",
        (ratio - 1.0) * 100.0,
        ours_us / base_us,
        n = pairs.len(),
    );
}
