//! A `redis-server` of a test's own: a free loopback port, no persistence,
//! stopped when dropped. Without the program the test fails when
//! `MC_REQUIRE_CLIENTS=1` (CI) and is skipped with a notice otherwise.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts one, or `None` (with a notice) when `redis-server` is
    /// missing and not required.
    pub fn start() -> Option<Self> {
        let required = std::env::var("MC_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) => {
                assert!(
                    !required,
                    "redis-server is required (MC_REQUIRE_CLIENTS=1): {err}"
                );
                eprintln!("notice: skipping: redis-server is missing ({err})");
                return None;
            }
        };
        let server = RedisServer { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// Its URL, database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}
