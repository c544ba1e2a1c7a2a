//! The library's integration tests, one test binary (each `tests/*.rs`
//! would be a binary of its own, linked again after every change to the
//! library or the sandbox). `tests/secrets.rs` stays apart: it installs a
//! process-wide logger and panic hook.

mod ajo;
mod conformance;
mod faults;
mod hostile_answers;
mod leads;
mod pacing;
mod properties;
mod redaction;
mod rest;
mod rest_schema;
mod soap_sandbox;
mod soap_server;
mod webhook_properties;
mod wsdl;
