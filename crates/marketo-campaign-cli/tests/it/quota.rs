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

/// `--limiter` naming a Redis that cannot answer: nothing is sent, exit 5,
/// the message names the limiter; `--limiter-fallback local` paces this
/// process alone and runs.
#[test]
fn an_unreachable_limiter_sends_nothing_unless_the_fallback_is_local() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let args = [
        "request",
        "--sandbox",
        "--backend",
        "rest",
        "--campaign-id",
        "4496",
        "--lead",
        "EMAIL:lead@company.com",
        "--limiter",
        url.as_str(),
    ];
    let (code, stdout, stderr) = run(&mut cli(&args));
    assert_eq!(code, 5, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("shared limiter (Redis) cannot answer"),
        "{stderr}"
    );
    let mut local = args.to_vec();
    local.extend(["--limiter-fallback", "local"]);
    let (code, stdout, stderr) = run(&mut cli(&local));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}
