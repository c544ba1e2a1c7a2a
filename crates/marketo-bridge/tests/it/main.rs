//! The bridge's tests, one test binary.

mod bridge;
mod bridge_tls;
mod defects;
mod leads;
