//! The sandbox's tests over HTTP, one test binary.

mod sandbox_faults;
mod sandbox_rest;
mod webhook;
