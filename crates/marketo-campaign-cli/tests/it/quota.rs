//! `request --daily-quota N`: past the quota, nothing is sent, exit 5, and
//! the message says when the quota day resets.

use crate::common::{cli, run};

#[test]
fn a_spent_daily_quota_exits_5_and_names_the_reset() {
    let (code, stdout, stderr) = run(&mut cli(&[
        "request",
        "--sandbox",
        "--backend",
        "rest",
        "--campaign-id",
        "4496",
        "--lead",
        "EMAIL:lead@company.com",
        "--daily-quota",
        "0",
        "--quota-day",
        "central",
    ]));
    assert_eq!(code, 5, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("daily quota of 0 calls is spent until"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was triggered"), "{stderr}");
    // --quota-day needs --daily-quota.
    let (code, _, stderr) = run(&mut cli(&[
        "request",
        "--sandbox",
        "--campaign-id",
        "4496",
        "--lead",
        "EMAIL:lead@company.com",
        "--quota-day",
        "central",
    ]));
    assert_eq!(code, 2, "{stderr}");
}
