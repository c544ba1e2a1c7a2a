//! The bridge's tests, one test binary.

mod bridge;
mod bridge_tls;
mod dedupe;
mod defects;
mod leads;
mod quota;
