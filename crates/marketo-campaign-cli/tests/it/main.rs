//! The command line's tests, one test binary: `marketo-campaign` run as a
//! process. `tests/secrets.rs` stays apart: it installs a process-wide
//! logger and panic hook.

#[path = "../common/mod.rs"]
mod common;

mod ajo;
mod bridge;
mod bulk_cli;
mod bulk_resume;
mod cli;
mod defects;
mod quota;
mod shared_run;
mod webhook_cli;
