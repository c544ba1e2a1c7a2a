//! The sandbox's sockets: one listening port (two when SOAP has its own),
//! an acceptor thread per port, a thread per connection, and the place
//! where faults strike.
//!
//! A connection reads its requests in turn ([`super::http`]), counts each
//! call in the fault plan, and either serves it (through a gate of
//! [`WORKERS`] calls at once) or applies the fault that strikes it.
//! Refusing connections closes a port's listener and re-binds the same
//! address when the refusal ends.

use std::io::{BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use super::faults::{self, Api, Call, CutAt, Fault, FaultBody, FaultEvent, FaultRule, Refusal};
use super::http::{self, Answer, Head, ReadError};
use super::{journal, rest, soap, State, MAX_REQUEST_BYTES};
use marketo_campaign::SoapCode;

/// Calls served at once (Marketo allows 10 concurrent calls; more let the
/// sandbox see and refuse the excess).
pub(crate) const WORKERS: usize = 16;
/// Connections open at once; more are closed on arrival.
const MAX_CONNECTIONS: usize = 512;
/// An idle connection (or a stalled request) is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A write that makes no progress for this long fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a change of a port's listening state is waited for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often blocked waits look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Connection states, for closing idle connections without dropping a
/// request that is being served.
const BUSY: u8 = 0;
const IDLE: u8 = 1;
const KILLED: u8 = 2;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The stop signal: a flag, and a condition variable so that sleepers wake.
#[derive(Debug, Default)]
struct Stop {
    flag: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Stop {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _guard = lock(&self.lock);
        self.cond.notify_all();
    }

    /// Sleeps `duration`; false if stopped meanwhile.
    fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = lock(&self.lock);
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if now >= deadline => return true,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            guard = self
                .cond
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// At most [`WORKERS`] calls served at once.
#[derive(Debug, Default)]
struct Gate {
    busy: Mutex<usize>,
    cond: Condvar,
}

/// A place in the gate, given back on drop.
struct Slot<'g>(&'g Gate);

impl Gate {
    fn enter<'g>(&'g self, stop: &Stop) -> Option<Slot<'g>> {
        let mut busy = lock(&self.busy);
        while *busy >= WORKERS {
            if stop.is_set() {
                return None;
            }
            busy = self
                .cond
                .wait_timeout(busy, POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *busy += 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.busy) -= 1;
        self.0.cond.notify_one();
    }
}

/// A listening address and whether it listens.
#[derive(Debug)]
struct Port {
    addr: SocketAddr,
    refusing: AtomicBool,
    ctl: Mutex<PortCtl>,
    cond: Condvar,
}

#[derive(Debug)]
struct PortCtl {
    /// Whether the port should refuse connections.
    refusing: bool,
    /// When refusing ends; `None`: when cleared.
    until: Option<Instant>,
    /// Whether the acceptor holds a listener.
    listening: bool,
}

impl Port {
    /// Where to connect to wake the acceptor.
    fn wake_addr(&self) -> SocketAddr {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.addr.port())
    }

    /// Wakes an acceptor blocked in `accept`.
    fn wake(&self) {
        if let Err(e) = TcpStream::connect_timeout(&self.wake_addr(), Duration::from_secs(1)) {
            log::debug!("sandbox could not wake its acceptor on {}: {e}", self.addr);
        }
    }

    /// Waits until the acceptor's listening state is `listening` (or the
    /// port's wish changed, or the sandbox stops).
    fn settle(&self, listening: bool, stop: &Stop) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut ctl = lock(&self.ctl);
        while ctl.listening != listening && ctl.refusing != listening && !stop.is_set() {
            let now = Instant::now();
            if now >= deadline {
                log::warn!(
                    "sandbox port {} did not {} in time",
                    self.addr,
                    if listening {
                        "listen again"
                    } else {
                        "stop listening"
                    }
                );
                return;
            }
            ctl = self
                .cond
                .wait_timeout(ctl, (deadline - now).min(POLL))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// An open connection, for closing it from outside its thread.
#[derive(Debug)]
struct Conn {
    id: u64,
    port: usize,
    stream: TcpStream,
    status: Arc<AtomicU8>,
}

#[derive(Debug, Default)]
struct Conns {
    next_id: u64,
    open: Vec<Conn>,
    threads: Vec<JoinHandle<()>>,
}

/// Everything the sandbox's threads share.
#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) state: State,
    ports: Vec<Port>,
    soap_port: usize,
    conns: Mutex<Conns>,
    stop: Stop,
    gate: Gate,
}

/// What happens to a connection after an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

impl Net {
    /// Starts serving: one acceptor per listener (the first is the main
    /// port, the second, if any, SOAP's own). Returns the acceptors.
    pub(crate) fn start(
        state: State,
        listeners: Vec<TcpListener>,
    ) -> std::io::Result<(Arc<Net>, Vec<JoinHandle<()>>)> {
        let ports = listeners
            .iter()
            .map(|l| {
                Ok(Port {
                    addr: l.local_addr()?,
                    refusing: AtomicBool::new(false),
                    ctl: Mutex::new(PortCtl {
                        refusing: false,
                        until: None,
                        listening: true,
                    }),
                    cond: Condvar::new(),
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let net = Arc::new(Net {
            state,
            soap_port: ports.len().saturating_sub(1),
            ports,
            conns: Mutex::new(Conns::default()),
            stop: Stop::default(),
            gate: Gate::default(),
        });
        let mut acceptors = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let net2 = net.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sandbox-accept-{index}"))
                .spawn(move || net2.accept_loop(index, listener));
            match spawned {
                Ok(handle) => acceptors.push(handle),
                Err(e) => {
                    net.shutdown(acceptors);
                    return Err(e);
                }
            }
        }
        let due = net.state.faults.refusals_due();
        net.refuse(&due);
        Ok((net, acceptors))
    }

    /// The index of the port SOAP's endpoint names.
    pub(crate) fn soap_port(&self) -> usize {
        self.soap_port
    }

    /// The address of port `index`.
    pub(crate) fn addr(&self, index: usize) -> Option<SocketAddr> {
        self.ports.get(index).map(|p| p.addr)
    }

    /// Stops every thread and waits for them.
    pub(crate) fn shutdown(&self, acceptors: Vec<JoinHandle<()>>) {
        self.stop.set();
        for port in &self.ports {
            let listening = {
                let ctl = lock(&port.ctl);
                port.cond.notify_all();
                ctl.listening
            };
            if listening {
                port.wake();
            }
        }
        for acceptor in acceptors {
            let _ = acceptor.join();
        }
        let threads = {
            let mut conns = lock(&self.conns);
            for conn in &conns.open {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        for thread in threads {
            let _ = thread.join();
        }
    }

    /// Adds a rule and applies the refusals it makes due.
    pub(crate) fn inject(&self, rule: FaultRule) {
        let due = self.state.faults.add(rule);
        self.refuse(&due);
    }

    /// Removes every rule and ends every refusal.
    pub(crate) fn clear_faults(&self) {
        self.state.faults.clear();
        for port in &self.ports {
            {
                let mut ctl = lock(&port.ctl);
                ctl.refusing = false;
                ctl.until = None;
                port.refusing.store(false, Ordering::SeqCst);
                port.cond.notify_all();
            }
            port.settle(true, &self.stop);
        }
    }

    /// The ports a rule for `api` refuses.
    fn ports_of(&self, api: Api) -> Vec<usize> {
        match api {
            Api::Soap => vec![self.soap_port],
            Api::Rest | Api::Identity | Api::Ajo => vec![0],
            _ => (0..self.ports.len()).collect(),
        }
    }

    /// Makes ports refuse connections: closes their idle connections,
    /// has their acceptors drop their listeners, and waits for that.
    fn refuse(&self, refusals: &[Refusal]) {
        for refusal in refusals {
            let until = refusal.lasting.and_then(|d| Instant::now().checked_add(d));
            for index in self.ports_of(refusal.api) {
                let Some(port) = self.ports.get(index) else {
                    continue;
                };
                let listening = {
                    let mut ctl = lock(&port.ctl);
                    ctl.until = match (ctl.refusing, ctl.until, until) {
                        (false, _, until) => until,
                        (true, Some(a), Some(b)) => Some(a.max(b)),
                        (true, _, _) => None,
                    };
                    ctl.refusing = true;
                    port.refusing.store(true, Ordering::SeqCst);
                    ctl.listening
                };
                self.close_idle(index);
                if listening {
                    port.wake();
                    port.settle(false, &self.stop);
                }
            }
        }
    }

    /// Closes the idle connections of port `index`.
    fn close_idle(&self, index: usize) {
        let conns = lock(&self.conns);
        for conn in conns.open.iter().filter(|c| c.port == index) {
            if conn
                .status
                .compare_exchange(IDLE, KILLED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// Whether connections of port `index` should close after the current
    /// exchange.
    fn closing(&self, index: usize) -> bool {
        self.stop.is_set()
            || self
                .ports
                .get(index)
                .is_some_and(|p| p.refusing.load(Ordering::SeqCst))
    }

    fn accept_loop(self: Arc<Self>, index: usize, listener: TcpListener) {
        let Some(port) = self.ports.get(index) else {
            return;
        };
        let mut listener = Some(listener);
        while !self.stop.is_set() {
            if let Some(current) = listener.take() {
                match current.accept() {
                    Ok((stream, _)) => {
                        if self.stop.is_set() {
                            break;
                        }
                        if port.refusing.load(Ordering::SeqCst) {
                            drop(stream);
                            drop(current);
                            let mut ctl = lock(&port.ctl);
                            ctl.listening = false;
                            port.cond.notify_all();
                            continue;
                        }
                        self.spawn_connection(stream, index);
                    }
                    Err(e) => {
                        log::debug!("sandbox accept error on {}: {e}", port.addr);
                        self.stop.sleep(Duration::from_millis(10));
                    }
                }
                listener = Some(current);
            } else {
                if !self.wait_until_listening_is_due(port) {
                    break;
                }
                match TcpListener::bind(port.addr) {
                    Ok(bound) => {
                        let mut ctl = lock(&port.ctl);
                        if ctl.refusing {
                            // Refused again while binding.
                            continue;
                        }
                        ctl.listening = true;
                        port.cond.notify_all();
                        listener = Some(bound);
                    }
                    Err(e) => {
                        log::warn!("sandbox cannot listen on {} again: {e}", port.addr);
                        self.stop.sleep(POLL);
                    }
                }
            }
        }
    }

    /// Waits while port refuses; ends a timed refusal. False when stopped.
    fn wait_until_listening_is_due(&self, port: &Port) -> bool {
        let mut ctl = lock(&port.ctl);
        loop {
            if self.stop.is_set() {
                return false;
            }
            let now = Instant::now();
            if ctl.refusing && ctl.until.is_some_and(|until| now >= until) {
                ctl.refusing = false;
                ctl.until = None;
                port.refusing.store(false, Ordering::SeqCst);
            }
            if !ctl.refusing {
                return true;
            }
            let wait = ctl
                .until
                .map_or(POLL, |until| until.saturating_duration_since(now).min(POLL));
            ctl = port
                .cond
                .wait_timeout(ctl, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn spawn_connection(self: &Arc<Self>, stream: TcpStream, port: usize) {
        let Ok(registered) = stream.try_clone() else {
            return;
        };
        let status = Arc::new(AtomicU8::new(BUSY));
        let mut conns = lock(&self.conns);
        conns.threads.retain(|t| !t.is_finished());
        if conns.open.len() >= MAX_CONNECTIONS {
            log::warn!("sandbox has {MAX_CONNECTIONS} connections open; closing a new one");
            return;
        }
        let id = conns.next_id;
        conns.next_id += 1;
        conns.open.push(Conn {
            id,
            port,
            stream: registered,
            status: status.clone(),
        });
        let net = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sandbox-conn-{id}"))
            .spawn(move || {
                net.serve(&stream, port, &status);
                let _ = stream.shutdown(Shutdown::Both);
                lock(&net.conns).open.retain(|c| c.id != id);
            });
        match spawned {
            Ok(handle) => conns.threads.push(handle),
            Err(e) => {
                log::warn!("sandbox cannot start a connection thread: {e}");
                conns.open.retain(|c| c.id != id);
            }
        }
    }

    /// Serves the requests of one connection in turn.
    fn serve(&self, stream: &TcpStream, port: usize, status: &AtomicU8) {
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut writer = stream;
        loop {
            if self.closing(port) {
                return;
            }
            // Idle: another thread may close the connection now.
            if status
                .compare_exchange(BUSY, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return;
            }
            let head = http::read_head(&mut reader);
            if status
                .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                // Closed while idle: whatever arrived is not served.
                return;
            }
            let next = match head {
                Ok(Some(head)) => self.exchange(&head, &mut reader, &mut writer, port),
                Ok(None) => Next::Close,
                Err(ReadError::Io(e)) => {
                    log::debug!("sandbox connection ends: {e}");
                    Next::Close
                }
                Err(ReadError::Bad(status, text)) => {
                    let answer = Answer::new(status, "text/plain", text);
                    let _ = writer.write_all(&answer.to_bytes(http::Version::Http11, false, false));
                    Next::Close
                }
            };
            // The call is answered: its campaign flows may start.
            self.state.flows.release();
            if next == Next::Close {
                return;
            }
        }
    }

    /// Reads one request's body, serves it or applies its fault, answers.
    fn exchange(
        &self,
        head: &Head,
        reader: &mut BufReader<TcpStream>,
        writer: &mut &TcpStream,
        port: usize,
    ) -> Next {
        let send = |writer: &mut &TcpStream, answer: &Answer| -> Next {
            let keep_alive = head.keep_alive() && !self.closing(port);
            let bytes = answer.to_bytes(head.version, keep_alive, head.method == "HEAD");
            match writer.write_all(&bytes).and_then(|()| writer.flush()) {
                Ok(()) if keep_alive => Next::KeepAlive,
                _ => Next::Close,
            }
        };
        let framing = match head.framing() {
            Ok(framing) => framing,
            Err(ReadError::Bad(status, text)) => {
                return send_close(writer, head, &Answer::new(status, "text/plain", text))
            }
            Err(ReadError::Io(_)) => return Next::Close,
        };
        let has_body = framing != http::Framing::Length(0);
        let fits = !matches!(framing, http::Framing::Length(n) if n > MAX_REQUEST_BYTES);
        if head.expects_continue() && has_body && fits && http::write_continue(writer).is_err() {
            return Next::Close;
        }
        let body = match http::read_body(reader, framing, MAX_REQUEST_BYTES) {
            Ok(body) => body,
            Err(ReadError::Bad(status, text)) => {
                return send_close(writer, head, &Answer::new(status, "text/plain", text))
            }
            Err(ReadError::Io(_)) => return Next::Close,
        };
        let path = head.path();
        // Fetching the WSDL is not an API call: not counted, never faulted.
        let api = api_of(path).filter(|_| !soap::asks_for_wsdl(head));
        let strike = api.map(|api| {
            self.state.faults.on_call(&Call {
                api,
                method: &head.method,
                path,
            })
        });
        let (call, fault) = match strike {
            Some(strike) => (strike.call, strike.fault),
            None => (0, None),
        };
        let record = |fault: &Fault, ran: bool| {
            if let Some(api) = api {
                self.state.faults.record(FaultEvent {
                    api,
                    call,
                    path: path.to_owned(),
                    fault: fault.clone(),
                    ran,
                });
            }
        };
        // Faults that do not run the call.
        match &fault {
            Some(
                fault @ (Fault::ResetAfterRequest
                | Fault::Cut {
                    at: CutAt::BeforeAnswer,
                    runs: false,
                }),
            ) => {
                record(fault, false);
                return Next::Close;
            }
            Some(fault @ Fault::Stall(hold)) => {
                record(fault, false);
                self.stop.sleep(*hold);
                return Next::Close;
            }
            Some(fault @ Fault::Cut { at, runs: false }) => {
                record(fault, false);
                let answer = self.unrun_success(api, head);
                return cut(writer, head, &answer, *at, &send);
            }
            Some(fault) if !fault.runs() => {
                record(fault, false);
                return send(writer, &self.injected(fault));
            }
            _ => {}
        }
        let before = journal::recorded_here();
        let answer = {
            let Some(_slot) = self.gate.enter(&self.stop) else {
                return Next::Close;
            };
            super::route(self, head, &body)
        };
        let ran = journal::recorded_here() != before;
        if api.is_some() {
            let due = self.state.faults.refusals_due();
            self.refuse(&due);
        }
        let Some(fault) = fault else {
            return send(writer, &answer);
        };
        record(&fault, ran);
        match fault {
            Fault::ResetMidResponse => cut(writer, head, &answer, CutAt::MidBody, &send),
            Fault::TruncatedBody => cut(writer, head, &answer, CutAt::ShortBody, &send),
            Fault::Cut { at, .. } => cut(writer, head, &answer, at, &send),
            Fault::Delay(delay) => {
                if !self.stop.sleep(delay) {
                    return Next::Close;
                }
                send(writer, &answer)
            }
            Fault::HttpStatus { .. } | Fault::Answer { .. } => send(writer, &self.injected(&fault)),
            Fault::MalformedBody => send(
                writer,
                &Answer {
                    body: faults::malformed(&answer.body),
                    ..answer
                },
            ),
            Fault::EmptyOk => send(
                writer,
                &Answer {
                    status: 200,
                    body: Vec::new(),
                    ..answer
                },
            ),
            _ => send(writer, &answer),
        }
    }

    /// The answer a fault gives instead of the sandbox's.
    fn injected(&self, fault: &Fault) -> Answer {
        match *fault {
            Fault::HttpStatus {
                status, body: true, ..
            } => Answer::new(
                status,
                "text/html; charset=utf-8",
                faults::status_page(status, http::reason(status)),
            ),
            Fault::HttpStatus { status, .. } => Answer::empty(status),
            Fault::SoapFault(code) => {
                let (status, body) =
                    soap::fault(SoapCode::from_code(code), faults::soap_fault_text(code));
                Answer::new(status, soap::XML, body)
            }
            Fault::RestError(code) => Answer::new(200, rest::JSON, self.rest_error(code)),
            Fault::Answer { status, body, .. } => {
                let reason = http::reason(status);
                match body {
                    FaultBody::Empty => Answer::empty(status),
                    FaultBody::Text => Answer::new(
                        status,
                        "text/plain; charset=utf-8",
                        faults::proxy_text(status, reason),
                    ),
                    FaultBody::Html => {
                        Answer::new(status, "text/html", faults::nginx_page(status, reason))
                    }
                    FaultBody::SoapFault(code) => {
                        let (_, xml) =
                            soap::fault(SoapCode::from_code(code), faults::soap_fault_text(code));
                        Answer::new(status, soap::XML, xml)
                    }
                    FaultBody::RestError(code) => {
                        Answer::new(status, rest::JSON, self.rest_error(code))
                    }
                }
            }
            _ => Answer::empty(500),
        }
    }

    /// Marketo's `success:false` body with `code`.
    fn rest_error(&self, code: u32) -> String {
        rest::error(
            self.state.next_request_id(),
            code,
            faults::rest_error_text(code),
        )
        .to_string()
    }

    /// The success answer a call of `api` would get, without running it
    /// (for cutting, by [`Fault::Cut`] without `runs`).
    fn unrun_success(&self, api: Option<Api>, head: &Head) -> Answer {
        match api {
            Some(Api::Soap) => {
                let schedule = head
                    .header("SOAPAction")
                    .is_some_and(|a| a.contains("scheduleCampaign"));
                let (status, xml) = soap::success(if schedule {
                    "successScheduleCampaign"
                } else {
                    "successRequestCampaign"
                });
                Answer::new(status, soap::XML, xml)
            }
            Some(Api::Ajo) => super::ajo::accepted(
                "not-run:the-call-did-not-run",
                "",
                "1970-01-01T00:00:00.000Z",
                "sandbox",
            ),
            Some(Api::Identity) => Answer::new(
                200,
                rest::JSON,
                json!({
                    "access_token": "not-issued:the-call-did-not-run",
                    "token_type": "bearer",
                    "expires_in": 3599,
                    "scope": "sandbox",
                })
                .to_string(),
            ),
            _ => Answer::new(
                200,
                rest::JSON,
                rest::success(
                    self.state.next_request_id(),
                    campaign_result(&self.state, head.path()),
                )
                .to_string(),
            ),
        }
    }
}

/// The `result` of a trigger or schedule success for `path`: the campaign
/// (as the sandbox's own answer would give it) for
/// `/rest/v1/campaigns/4496/trigger.json`, `{"id":N}` for a campaign the
/// sandbox does not know, empty for other paths.
fn campaign_result(state: &State, path: &str) -> Vec<serde_json::Value> {
    let id = path
        .strip_prefix("/rest/v1/campaigns/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(id, _)| id);
    let Some(number) = id.and_then(|id| id.parse::<u64>().ok()) else {
        return Vec::new();
    };
    vec![match id.and_then(|id| rest::campaign(state, id)) {
        Some(campaign) => rest::campaign_json(state, campaign),
        None => json!({ "id": number }),
    }]
}

/// Sends `answer` cut as `at` says; the connection then closes (except
/// for a short body, which is complete as HTTP).
fn cut(
    writer: &mut &TcpStream,
    head: &Head,
    answer: &Answer,
    at: CutAt,
    send: &dyn Fn(&mut &TcpStream, &Answer) -> Next,
) -> Next {
    match at {
        CutAt::BeforeAnswer => Next::Close,
        CutAt::MidBody => {
            let body: &[u8] = &answer.body;
            let mut bytes = answer.head(head.version, true, body.len());
            if body.is_empty() {
                bytes.truncate(bytes.len() / 2);
            } else {
                bytes.extend_from_slice(&body[..body.len() / 2]);
            }
            let _ = writer.write_all(&bytes).and_then(|()| writer.flush());
            Next::Close
        }
        CutAt::ShortBody => send(
            writer,
            &Answer {
                body: faults::truncated(&answer.body),
                ..answer.clone()
            },
        ),
    }
}

/// Answers and closes.
fn send_close(writer: &mut &TcpStream, head: &Head, answer: &Answer) -> Next {
    let _ = writer.write_all(&answer.to_bytes(head.version, false, head.method == "HEAD"));
    Next::Close
}

/// The API a path belongs to; `None` for the sandbox's own endpoints.
fn api_of(path: &str) -> Option<Api> {
    if path == super::SOAP_PATH {
        Some(Api::Soap)
    } else if path == super::identity::TOKEN_PATH || path == super::ajo::IMS_TOKEN_PATH {
        Some(Api::Identity)
    } else if path.starts_with(super::ajo::AJO_PREFIX) {
        Some(Api::Ajo)
    } else if path.starts_with(rest::REST_PREFIX) {
        Some(Api::Rest)
    } else {
        None
    }
}
