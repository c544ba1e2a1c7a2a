//! `request --leads-file`: streamed bulk runs, JSON lines per chunk, resume.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressStyle};
use marketo_campaign::{
    chunk_digest, request_digest, run_bulk_with, BulkOptions, CampaignRequest, CampaignTarget,
    ChunkReport, ChunkStatus, Delivery, Error, LeadKey, LeadKeyType, Source,
};

use crate::quote::{self, quoted};
use crate::record_sink::{RecordSink, Synced};
use crate::{
    build_target, fail, print_plans, Backend, Client, RequestArgs, EXIT_INVALID, EXIT_OK,
    EXIT_REFUSED, EXIT_UNKNOWN,
};

/// How lines of a leads file become lead keys.
enum Format {
    /// `TYPE:VALUE` lines.
    Pairs,
    /// CSV rows: the key type's column and the value's column, or one column
    /// whose header names the key type.
    Csv {
        type_column: Option<usize>,
        fixed_type: Option<LeadKeyType>,
        value_column: usize,
    },
}

/// Splits a CSV row (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("fields is never empty");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    fields
}

impl Format {
    /// The format of a file whose first data line is `line`: `TYPE:VALUE`
    /// (a key type's name before the first `:`, whether or not its value is
    /// valid: its error then says what is wrong with it), or a CSV header.
    fn detect(line: &str) -> Result<Format, String> {
        let names_a_key_type = |line: &str| {
            line.split_once(':')
                .is_some_and(|(key_type, _)| key_type.trim().parse::<LeadKeyType>().is_ok())
        };
        if line.parse::<LeadKey>().is_ok() || names_a_key_type(line) {
            return Ok(Format::Pairs);
        }
        let header: Vec<String> = csv_fields(line)
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let find = |name: &str| header.iter().position(|h| h == name);
        if let (Some(t), Some(v)) = (find("type"), find("value")) {
            return Ok(Format::Csv {
                type_column: Some(t),
                fixed_type: None,
                value_column: v,
            });
        }
        let typed: Vec<(usize, LeadKeyType)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.parse::<LeadKeyType>().ok().map(|t| (i, t)))
            .collect();
        match typed.as_slice() {
            [(column, key_type)] => Ok(Format::Csv {
                type_column: None,
                fixed_type: Some(*key_type),
                value_column: *column,
            }),
            _ => Err(format!(
                "{} is neither TYPE:VALUE nor a CSV header with 'type' and 'value' columns \
                 or exactly one column named after a key type (e.g. 'email')",
                quoted(line)
            )),
        }
    }

    fn parse(&self, line: &str) -> Result<LeadKey, Error> {
        match self {
            Format::Pairs => line.parse(),
            Format::Csv {
                type_column,
                fixed_type,
                value_column,
            } => {
                let fields = csv_fields(line);
                let field = |i: usize| {
                    fields.get(i).ok_or_else(|| Error::InvalidInput {
                        field: "CSV row".into(),
                        reason: format!("{} has no column {}", quoted(line), i + 1),
                    })
                };
                let key_type = match (type_column, fixed_type) {
                    (_, Some(key_type)) => *key_type,
                    (Some(column), None) => field(*column)?.trim().parse()?,
                    (None, None) => unreachable!("a CSV format names its key type"),
                };
                LeadKey::new(key_type, field(*value_column)?.as_str())
            }
        }
    }
}

/// Lead keys read from a leads file, one at a time, with line numbers in
/// their errors.
struct LeadLines<R> {
    lines: std::io::Lines<R>,
    name: String,
    number: usize,
    format: Option<Format>,
}

impl<R: BufRead> LeadLines<R> {
    fn new(reader: R, name: String) -> Self {
        LeadLines {
            lines: reader.lines(),
            name,
            number: 0,
            format: None,
        }
    }
}

impl<R: BufRead> Iterator for LeadLines<R> {
    type Item = Result<LeadKey, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.number += 1;
            let at = || format!("{}:{}", self.name, self.number);
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    return Some(Err(Error::InvalidInput {
                        field: at(),
                        reason: e.to_string(),
                    }))
                }
            };
            let line = line.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let format = match &self.format {
                Some(format) => format,
                None => match Format::detect(line) {
                    Ok(format) => {
                        let header = !matches!(format, Format::Pairs);
                        self.format = Some(format);
                        if header {
                            continue;
                        }
                        self.format.as_ref()?
                    }
                    Err(reason) => {
                        return Some(Err(Error::InvalidInput {
                            field: at(),
                            reason,
                        }))
                    }
                },
            };
            return Some(format.parse(line).map_err(|e| Error::InvalidInput {
                field: at(),
                reason: reason(&e),
            }));
        }
    }
}

/// What is wrong, without the "(nothing was sent)" an error's text ends
/// with: the caller says what was sent.
fn reason(err: &Error) -> String {
    match err {
        Error::InvalidInput { field, reason } => format!("{field}: {reason}"),
        Error::Config(reason) => reason.clone(),
        err => err.to_string(),
    }
}

fn open(path: &Path) -> Result<LeadLines<Box<dyn BufRead>>, Error> {
    if path.as_os_str() == "-" {
        return Ok(LeadLines::new(
            Box::new(std::io::stdin().lock()),
            "stdin".into(),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::InvalidInput {
        field: format!("--leads-file {}", quote::path(path)),
        reason: e.to_string(),
    })?;
    Ok(LeadLines::new(
        Box::new(std::io::BufReader::with_capacity(1 << 16, file)),
        quote::path(path),
    ))
}

/// What a record says about one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// Accepted: not resent.
    Accepted,
    /// Sent, outcome unknown (it failed with delivery `unknown`, or the run
    /// stopped after its "sending" line and before its outcome): not
    /// resent, and the run is not complete.
    Unknown,
    /// Refused, not sent or not attempted: sent again.
    Resend,
}

/// One chunk as a previous run's record has it.
struct RecordedChunk {
    state: Recorded,
    digest: String,
    /// Its line, as a resumed run prints it again.
    line: serde_json::Value,
}

impl RecordedChunk {
    fn leads(&self) -> usize {
        self.line["leads"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    }

    fn first_lead(&self) -> &str {
        self.line["first_lead"].as_str().unwrap_or_default()
    }

    fn unmatched(&self) -> usize {
        self.line["unmatched"].as_array().map_or(0, Vec::len)
    }
}

/// What a previous run's `--json` output (its record) says about each chunk.
struct Resume {
    path: String,
    /// Leads per chunk: the backend's size (the record's chunks were formed
    /// with it; resuming with a backend of another size finds them changed).
    size: usize,
    /// The [`request_digest`] every chunk line of the record carries (none
    /// if the record holds no chunk).
    request: Option<String>,
    chunks: BTreeMap<usize, RecordedChunk>,
}

impl Resume {
    fn read(path: &Path, size: usize) -> Result<Resume, Error> {
        let name = quote::path(path);
        let bad = |reason: String| Error::InvalidInput {
            field: format!("--resume {name}"),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        // Per chunk: its "sending" line, and its outcome lines.
        let mut sending: HashMap<usize, serde_json::Value> = HashMap::new();
        let mut outcomes: HashMap<usize, Vec<(Recorded, serde_json::Value)>> = HashMap::new();
        let mut request: Option<String> = None;
        for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| bad(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| bad(format!("line {}: not JSON: {e}", number + 1)))?;
            let Some(index) = value.get("chunk").and_then(serde_json::Value::as_u64) else {
                continue; // the summary line
            };
            let index = usize::try_from(index).map_err(|_| {
                bad(format!(
                    "line {}: chunk {index} is out of range",
                    number + 1
                ))
            })?;
            if !value["digest"].as_str().is_some_and(is_digest) {
                return Err(bad(format!(
                    "line {}: chunk {index} has no digest (a record written by an older \
                     marketo-campaign?): the leads file cannot be checked against it",
                    number + 1
                )));
            }
            match (value["request"].as_str(), &request) {
                (Some(digest), None) if is_digest(digest) => request = Some(digest.to_owned()),
                (Some(digest), Some(first)) if digest == first => {}
                (Some(digest), Some(_)) if is_digest(digest) => {
                    return Err(bad(format!(
                        "line {}: chunk {index} was sent for another request than the chunks \
                         before it: the record mixes several requests (records of different \
                         runs pasted together?), so it cannot say what was sent for this one",
                        number + 1
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "line {}: chunk {index} does not say which request it was sent for \
                         (a record written by an older marketo-campaign?): resuming could skip \
                         leads that never got this campaign. Start a new run without --resume, \
                         on a leads file that holds only the leads not yet served",
                        number + 1
                    )))
                }
            }
            if let Some(object) = value.as_object_mut() {
                object.remove("carried_over");
            }
            let state = match (value["status"].as_str(), value["delivery"].as_str()) {
                (Some("sending"), _) => {
                    sending.insert(index, value);
                    continue;
                }
                (Some("accepted"), _) => Recorded::Accepted,
                (Some("failed"), Some("unknown")) => Recorded::Unknown,
                (Some("failed" | "not_attempted"), _) => Recorded::Resend,
                (status, _) => {
                    return Err(bad(format!(
                        "line {}: chunk {index} has an unknown status {}",
                        number + 1,
                        status.map_or_else(|| "(none)".to_owned(), quoted)
                    )))
                }
            };
            outcomes.entry(index).or_default().push((state, value));
        }
        let mut chunks = BTreeMap::new();
        for (index, mut lines) in outcomes {
            // Should a chunk have several outcomes, the one that forbids
            // resending wins.
            lines.sort_by_key(|(state, _)| match state {
                Recorded::Accepted => 0,
                Recorded::Unknown => 1,
                Recorded::Resend => 2,
            });
            let (state, line) = lines.swap_remove(0);
            let digest = line["digest"].as_str().unwrap_or_default().to_owned();
            chunks.insert(
                index,
                RecordedChunk {
                    state,
                    digest,
                    line,
                },
            );
        }
        for (index, line) in sending {
            chunks.entry(index).or_insert_with(|| {
                let digest = line["digest"].as_str().unwrap_or_default().to_owned();
                RecordedChunk {
                    state: Recorded::Unknown,
                    line: serde_json::json!({
                        "chunk": index,
                        "first_lead": line["first_lead"],
                        "leads": line["leads"],
                        "backend": "",
                        "status": "failed",
                        "error": "sent, but the run stopped before its answer was recorded: \
                                  the campaign may have run",
                        "delivery": "unknown",
                        "unmatched": [],
                        "digest": digest,
                        "request": line["request"],
                    }),
                    digest,
                }
            });
        }
        Ok(Resume {
            path: name,
            size,
            request,
            chunks,
        })
    }

    /// Checks that the record's chunks were sent for `request` (a
    /// [`request_digest`]), described as `described`: a record of another
    /// campaign, other tokens or another source would skip chunks whose
    /// leads never got this request.
    fn check_request(&self, request: &str, described: &str) -> Result<(), Error> {
        match &self.request {
            Some(recorded) if recorded != request => Err(Error::InvalidInput {
                field: format!("--resume {}", self.path),
                reason: format!(
                    "its chunks were sent for another request (request digest {recorded}) than \
                     this run's ({described}; request digest {request}): the campaign, its \
                     program, its tokens or the source differ. Resuming would skip the chunks \
                     accepted for that request, whose leads never got this one. Resume with the \
                     same --campaign-id, or --campaign-name, --program-name and --token, and \
                     --source as that run; or run without --resume"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The chunks not to send: accepted, or whose outcome is unknown.
    fn carried(&self) -> impl Iterator<Item = (usize, &RecordedChunk)> + '_ {
        self.chunks
            .iter()
            .filter(|(_, chunk)| chunk.state != Recorded::Resend)
            .map(|(index, chunk)| (*index, chunk))
    }

    /// Checks that chunk `index` of the leads file still holds what the
    /// record says was sent, if the record says it was sent.
    fn check(&self, index: usize, leads: &[LeadKey]) -> Result<(), Error> {
        match self.chunks.get(&index) {
            Some(chunk) if chunk.state != Recorded::Resend => {
                if chunk.digest == chunk_digest(leads) {
                    return Ok(());
                }
                Err(self.changed(format!(
                    "{} differs from the chunk the record says was {}",
                    describe(index, leads.len(), &first(leads), self.size),
                    if chunk.state == Recorded::Accepted {
                        "accepted"
                    } else {
                        "sent (outcome unknown)"
                    }
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks that the leads file, of `chunks` chunks, still holds every
    /// chunk the record says was sent.
    fn check_end(&self, chunks: usize) -> Result<(), Error> {
        match self.carried().find(|(index, _)| *index >= chunks) {
            Some((index, chunk)) => Err(self.changed(format!(
                "the leads file ends before {}, which the record says was sent",
                describe(index, chunk.leads(), chunk.first_lead(), self.size)
            ))),
            None => Ok(()),
        }
    }

    fn changed(&self, what: String) -> Error {
        Error::InvalidInput {
            field: "--resume".into(),
            reason: format!(
                "{what} in {}: the leads file changed since that run, and resuming could run \
                 leads twice or never",
                self.path
            ),
        }
    }
}

/// The leads of a file checked chunk by chunk against a resume record: a
/// chunk that differs from what the record says was sent is an error, given
/// before the chunk's last lead.
struct Checked<'a, I> {
    leads: I,
    resume: Option<&'a Resume>,
    chunk: Vec<LeadKey>,
    index: usize,
    ended: bool,
}

impl<'a, I> Checked<'a, I> {
    fn new(leads: I, resume: Option<&'a Resume>) -> Self {
        Checked {
            leads,
            resume,
            chunk: Vec::with_capacity(resume.map_or(0, |r| r.size)),
            index: 0,
            ended: false,
        }
    }
}

impl<I: Iterator<Item = Result<LeadKey, Error>>> Iterator for Checked<'_, I> {
    type Item = Result<LeadKey, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(resume) = self.resume else {
            return self.leads.next();
        };
        if self.ended {
            return None;
        }
        match self.leads.next() {
            Some(Ok(lead)) => {
                self.chunk.push(lead.clone());
                if self.chunk.len() >= resume.size {
                    let checked = resume.check(self.index, &self.chunk);
                    self.chunk.clear();
                    self.index += 1;
                    if let Err(e) = checked {
                        self.ended = true;
                        return Some(Err(e));
                    }
                }
                Some(Ok(lead))
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                self.ended = true;
                let mut chunks = self.index;
                if !self.chunk.is_empty() {
                    if let Err(e) = resume.check(self.index, &self.chunk) {
                        return Some(Err(e));
                    }
                    chunks += 1;
                }
                resume.check_end(chunks).err().map(Err)
            }
        }
    }
}

/// Whether `text` looks like a SHA-1 digest in lowercase hex.
fn is_digest(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A request as an error message shows it: its campaign, its tokens'
/// names (not their values) and its source.
fn describe_request(target: &CampaignTarget, source: Source) -> String {
    match target {
        CampaignTarget::Named { tokens, .. } if !tokens.is_empty() => {
            let names: Vec<&str> = tokens.iter().map(|t| t.name()).collect();
            format!("{target} with tokens {}, source {source}", names.join(", "))
        }
        _ => format!("{target}, source {source}"),
    }
}

/// `chunk 3 (leads 301-400, from EMAIL:a@b.c)`: leads numbered from 1 in
/// input order, `--lead` first, in chunks of `size`.
fn describe(index: usize, leads: usize, first: &str, size: usize) -> String {
    let start = index.saturating_mul(size);
    format!(
        "chunk {index} (leads {}-{}, from {first})",
        start.saturating_add(1),
        start.saturating_add(leads)
    )
}

fn first(leads: &[LeadKey]) -> String {
    leads.first().map(ToString::to_string).unwrap_or_default()
}

fn sending_line(index: usize, leads: &[LeadKey], request: &str) -> serde_json::Value {
    serde_json::json!({
        "chunk": index,
        "status": "sending",
        "first_lead": leads.first().map(ToString::to_string),
        "leads": leads.len(),
        "digest": chunk_digest(leads),
        "request": request,
    })
}

fn chunk_line(chunk: &ChunkReport, request: &str) -> serde_json::Value {
    let (status, error, delivery) = crate::chunk_status(chunk);
    let mut line = serde_json::json!({
        "chunk": chunk.index(),
        "first_lead": chunk.leads().first().map(ToString::to_string),
        "leads": chunk.leads().len(),
        "backend": chunk.backend(),
        "status": status,
        "error": error,
        "delivery": delivery,
        "unmatched": chunk.unmatched().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "digest": chunk_digest(chunk.leads()),
        "request": request,
    });
    if let (Some(id), Some(map)) = (chunk.execution_id(), line.as_object_mut()) {
        map.insert("execution_id".into(), id.into());
    }
    // A chunk the backend served in parts: the leads the campaign ran for.
    if let (ChunkStatus::Failed(e), Some(map)) = (chunk.status(), line.as_object_mut()) {
        if let Some(served) = e.served() {
            let served: Vec<String> = served.iter().map(ToString::to_string).collect();
            map.insert("served".into(), served.into());
        }
    }
    line
}

/// The outcomes of the chunks this run sent (or did not attempt).
#[derive(Debug, Default, Clone)]
struct Tally {
    accepted: usize,
    failed: usize,
    /// Of the failed chunks, those that may have run.
    unknown: usize,
    not_attempted: usize,
    unmatched: usize,
    /// Leads in the accepted and failed chunks.
    sent_leads: usize,
    /// The worst delivery among failed chunks.
    worst: Option<Delivery>,
}

impl Tally {
    fn add(&mut self, chunk: &ChunkReport) {
        match chunk.status() {
            ChunkStatus::Accepted => self.accepted += 1,
            ChunkStatus::Failed(e) => {
                self.failed += 1;
                let delivery = e.delivery();
                if delivery == Delivery::Unknown {
                    self.unknown += 1;
                }
                self.worst = self.worst.max(Some(delivery));
            }
            _ => {
                self.not_attempted += 1;
                return;
            }
        }
        self.sent_leads += chunk.leads().len();
        self.unmatched += chunk.unmatched().len();
    }

    /// Chunks handed to the server (accepted or failed).
    fn sent(&self) -> usize {
        self.accepted + self.failed
    }

    /// `2 chunks (200 leads) had been sent (1 accepted, 1 failed, 1 unknown:
    /// it may have run)`.
    fn sent_so_far(&self) -> String {
        let sent = self.sent();
        format!(
            "{sent} chunk{} ({} leads) had been sent ({} accepted, {} failed{})",
            if sent == 1 { "" } else { "s" },
            self.sent_leads,
            self.accepted,
            self.failed,
            match self.unknown {
                0 => String::new(),
                1 => ", 1 unknown: it may have run".to_owned(),
                n => format!(", {n} unknown: they may have run"),
            }
        )
    }
}

/// Every chunk of the record so far, carried over or sent by this run.
#[derive(Debug, Default)]
struct Totals {
    leads: usize,
    accepted: usize,
    failed: usize,
    unknown: usize,
    not_attempted: usize,
    unmatched: usize,
    /// Chunks carried over from `--resume`, not sent by this run.
    carried: usize,
    /// What stopped the run before the end of its input (a bad line in
    /// stdin, a leads file changed during the run).
    stopped: Option<String>,
}

impl Totals {
    fn is_complete(&self) -> bool {
        self.failed == 0 && self.not_attempted == 0 && self.unmatched == 0 && self.stopped.is_none()
    }
}

fn summary_line(totals: &Totals) -> serde_json::Value {
    serde_json::json!({"summary": {
        "leads": totals.leads,
        "accepted": totals.accepted,
        "failed": totals.failed,
        "unknown": totals.unknown,
        "not_attempted": totals.not_attempted,
        "skipped": totals.carried,
        "unmatched": totals.unmatched,
        "complete": totals.is_complete(),
        "error": totals.stopped,
    }})
}

fn progress(total: Option<usize>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total as u64),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{elapsed_precise} [{bar:40}] {pos}/{len} leads ({per_sec}, eta {eta}) {msg}"
    } else {
        "{elapsed_precise} {spinner} {pos} leads ({per_sec}) {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Writes a line to stderr: above the progress bar when one is drawn, else
/// directly (a hidden bar drops its `println`s). A failure to write to
/// stderr is ignored: stderr is not the record.
fn note(bar: &ProgressBar, message: &str) {
    if bar.is_hidden() {
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    } else {
        bar.println(message);
    }
}

/// Where stdout goes, for messages: `stdout (/path/of/the/file)` where the
/// system says, else `stdout`.
fn stdout_name() -> String {
    match std::fs::read_link("/proc/self/fd/1") {
        Ok(target) => format!("stdout ({})", target.display()),
        Err(_) => "stdout".into(),
    }
}

/// The run's record (`--json` on stdout): each chunk's "sending" line is
/// written, flushed and synced (durable: see [`crate::record_sink`]) before
/// the chunk is sent, its outcome after (flushed: a lost outcome line makes
/// the chunk unknown for `--resume`, never resent). The first failed write
/// or sync stops the run. Counts the outcomes with or without `--json`.
struct Record {
    json: bool,
    /// Leads per chunk.
    size: usize,
    /// The run's [`request_digest`], on every chunk line.
    request: String,
    state: Mutex<RecordState>,
}

struct RecordState {
    /// Where the lines go.
    sink: Box<dyn RecordSink>,
    /// Lines written.
    lines: usize,
    /// The first write that failed: the line's number, what it was, and
    /// the error.
    failed: Option<(usize, String, std::io::Error)>,
    /// This run's chunks by outcome.
    tally: Tally,
}

impl Record {
    /// A record on stdout.
    fn new(json: bool, request: String, size: usize) -> Self {
        Record::with_sink(json, request, size, Box::new(Synced::stdout()))
    }

    fn with_sink(json: bool, request: String, size: usize, sink: Box<dyn RecordSink>) -> Self {
        Record {
            json,
            size,
            request,
            state: Mutex::new(RecordState {
                sink,
                lines: 0,
                failed: None,
                tally: Tally::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes and flushes one line, and syncs it if `sync` (a "sending"
    /// line), unless a write failed before; `what` names the line should it
    /// fail.
    fn write(
        &self,
        state: &mut RecordState,
        line: &serde_json::Value,
        sync: bool,
        what: impl FnOnce() -> String,
    ) -> std::io::Result<()> {
        if let Some((_, _, e)) = &state.failed {
            return Err(std::io::Error::new(e.kind(), e.to_string()));
        }
        let out = &mut state.sink;
        // One write of the whole line.
        let mut text = line.to_string();
        text.push('\n');
        let written = out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .and_then(|()| match sync {
                true => out.sync().map(drop).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("cannot sync it to the disk: {e}"))
                }),
                false => Ok(()),
            });
        match &written {
            Ok(()) => state.lines += 1,
            Err(e) => {
                state.failed = Some((
                    state.lines + 1,
                    what(),
                    std::io::Error::new(e.kind(), e.to_string()),
                ));
            }
        }
        written
    }

    /// Writes a line that is not about a chunk being sent.
    fn line(&self, line: &serde_json::Value, what: impl FnOnce() -> String) -> std::io::Result<()> {
        if !self.json {
            return Ok(());
        }
        let mut state = self.lock();
        self.write(&mut state, line, false, what)
    }

    /// The hook before a chunk is sent.
    fn sending(&self, index: usize, leads: &[LeadKey]) -> Result<(), Error> {
        if !self.json {
            return Ok(());
        }
        let mut state = self.lock();
        let line = sending_line(index, leads, &self.request);
        self.write(&mut state, &line, true, || {
            format!("the sending line of chunk {index}")
        })
        .map_err(|e| {
            // A stand-in: the run reads the record's own failure().
            Error::Config(format!("cannot write the run's record: {e}"))
        })
    }

    /// A chunk's outcome.
    fn done(&self, chunk: &ChunkReport, bar: &ProgressBar) {
        let mut state = self.lock();
        state.tally.add(chunk);
        if self.json {
            // A failure is kept in the state and stops the run at the next
            // chunk.
            let index = chunk.index();
            let _ = self.write(&mut state, &chunk_line(chunk, &self.request), false, || {
                format!("the outcome of chunk {index}")
            });
        }
        drop(state);
        let name = describe(
            chunk.index(),
            chunk.leads().len(),
            &first(chunk.leads()),
            self.size,
        );
        match chunk.status() {
            ChunkStatus::Accepted => {}
            ChunkStatus::Failed(e) => note(
                bar,
                &format!(
                    "{name}: failed ({}: {}): {e}",
                    e.delivery().as_str(),
                    e.delivery()
                ),
            ),
            _ => note(
                bar,
                &format!("{name}: not attempted (not_sent: nothing was sent)"),
            ),
        }
        bar.inc(chunk.leads().len() as u64);
    }

    fn tally(&self) -> Tally {
        self.lock().tally.clone()
    }

    /// The error that ends a run whose record could not be written, and its
    /// exit status: which line failed, and what had been sent.
    fn failure(&self) -> Option<(String, u8)> {
        let state = self.lock();
        let (number, what, e) = state.failed.as_ref()?;
        let failed = format!(
            "cannot write line {number} of the run's record ({what}) to {}: {e}",
            stdout_name()
        );
        Some(if state.tally.sent() == 0 {
            (format!("{failed}; nothing was sent"), EXIT_INVALID)
        } else {
            (
                format!(
                    "{failed}. The run stopped there: {}; no chunk was sent after that. A chunk \
                     whose outcome is missing from the record counts as unknown for --resume, \
                     which does not resend it",
                    state.tally.sent_so_far()
                ),
                EXIT_UNKNOWN,
            )
        })
    }
}

/// The leads of `--lead` then of the leads file, checked chunk by chunk
/// against the resume record.
fn leads<'a>(
    args: &'a RequestArgs,
    file: impl Iterator<Item = Result<LeadKey, Error>> + 'a,
    resume: Option<&'a Resume>,
) -> impl Iterator<Item = Result<LeadKey, Error>> + 'a {
    let given = args.lead.iter().map(|l| l.parse::<LeadKey>());
    Checked::new(given.chain(file), resume)
}

fn no_leads(path: &Path) -> Error {
    Error::InvalidInput {
        field: if path.as_os_str() == "-" {
            "--leads-file - (stdin)".into()
        } else {
            format!("--leads-file {}", quote::path(path))
        },
        reason: "no leads in it (empty, or only blank lines and # comments)".into(),
    }
}

/// Runs `request --leads-file`.
pub(crate) fn run(args: &RequestArgs, client: &Client) -> u8 {
    match try_run(args, client) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

/// Prints the error that ends a run whose record could not be written;
/// its exit status.
fn record_failed(record: &Record) -> Option<u8> {
    let (message, code) = record.failure()?;
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
    Some(code)
}

fn try_run(args: &RequestArgs, client: &Client) -> Result<u8, Error> {
    let (target, source) = build_target(args)?;
    let request = request_digest(&target, source);
    let path = args
        .leads_file
        .as_deref()
        .ok_or_else(|| Error::Config("no leads file".into()))?;
    let stdin = path.as_os_str() == "-";
    if stdin && args.resume.is_some() {
        return Err(Error::InvalidInput {
            field: "--resume".into(),
            reason: "needs --leads-file PATH, not stdin: the file is checked whole against the \
                     record before anything is sent"
                .into(),
        });
    }
    // Chunks of the backend's size (100; 20 for AJO), as run_bulk forms them.
    let size = client.requester().max_leads_per_call().max(1);
    let resume = args
        .resume
        .as_deref()
        .map(|path| Resume::read(path, size))
        .transpose()?;
    if let Some(resume) = &resume {
        resume.check_request(&request, &describe_request(&target, source))?;
    }
    // A file is checked whole first (and against the resume record), so a
    // bad line, an empty file or a changed chunk sends nothing.
    let (total, file) = if stdin {
        let mut file = open(path)?.peekable();
        if file.peek().is_none() {
            return Err(no_leads(path));
        }
        (None, file)
    } else {
        let mut count = 0;
        for lead in leads(args, open(path)?, resume.as_ref()) {
            lead?;
            count += 1;
        }
        if count <= args.lead.len() {
            return Err(no_leads(path));
        }
        (Some(count), open(path)?.peekable())
    };
    let read = std::cell::Cell::new(0usize);
    let leads = leads(args, file, resume.as_ref()).inspect(|lead| {
        if lead.is_ok() {
            read.set(read.get() + 1);
        }
    });
    if args.dry_run {
        return dry_run(client, &target, source, leads, args.json, size);
    }
    let mut options = BulkOptions::new().workers(args.workers);
    if args.backend == Backend::Rest || matches!(client, Client::Rest(_)) {
        options = options.chunks_per_request(3);
    }
    let bar = progress(total);
    let record = Record::new(args.json, request, size);
    let mut totals = Totals::default();
    // A resumed run's output is a whole record: the chunks it does not send
    // are written first, as the previous record had them.
    if let Some(resume) = &resume {
        options = options.skip(resume.carried().map(|(index, _)| index));
        for (index, chunk) in resume.carried() {
            let mut line = chunk.line.clone();
            line["carried_over"] = serde_json::Value::Bool(true);
            if record
                .line(&line, || format!("the carried-over line of chunk {index}"))
                .is_err()
            {
                return Ok(record_failed(&record).unwrap_or(EXIT_INVALID));
            }
            totals.carried += 1;
            totals.unmatched += chunk.unmatched();
            if chunk.state == Recorded::Accepted {
                totals.accepted += 1;
            } else {
                totals.failed += 1;
                totals.unknown += 1;
                note(
                    &bar,
                    &format!(
                        "{}: not resent: its outcome is unknown in {} (it may have run)",
                        describe(index, chunk.leads(), chunk.first_lead(), size),
                        resume.path
                    ),
                );
            }
        }
    }
    let result = run_bulk_with(
        client.requester(),
        &target,
        source,
        leads,
        &options,
        |index, leads| record.sending(index, leads),
        |chunk| record.done(chunk, &bar),
    );
    bar.finish_and_clear();
    if let Some(code) = record_failed(&record) {
        return Ok(code);
    }
    let tally = record.tally();
    if let Err(e) = result {
        if tally.sent() == 0 {
            // Whatever stopped the run (a bad line in stdin), nothing had
            // been sent.
            return Err(e);
        }
        totals.stopped = Some(reason(&e));
    }
    totals.leads = read.get();
    totals.accepted += tally.accepted;
    totals.failed += tally.failed;
    totals.unknown += tally.unknown;
    totals.not_attempted += tally.not_attempted;
    totals.unmatched += tally.unmatched;
    if record
        .line(&summary_line(&totals), || "the summary line".into())
        .is_err()
    {
        return Ok(record_failed(&record).unwrap_or(EXIT_UNKNOWN));
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "{}: {} leads; chunks: {} accepted, {} failed ({} unknown: may have run), {} not attempted, \
         {} carried over from --resume; {} keys matched no lead; {}",
        client.requester(),
        totals.leads,
        totals.accepted,
        totals.failed,
        totals.unknown,
        totals.not_attempted,
        totals.carried,
        totals.unmatched,
        if totals.is_complete() {
            "complete"
        } else {
            "incomplete"
        }
    );
    if let Some(stopped) = &totals.stopped {
        let _ = writeln!(
            std::io::stderr().lock(),
            "error: {stopped}. The run stopped there: {}; the leads from there on were not sent",
            tally.sent_so_far()
        );
    }
    // A run that stopped at bad input after sending some chunks is not
    // exit 2 ("nothing was sent"): it exits as its chunks did, and 3 if they
    // were all accepted (the rest did not run).
    Ok(if totals.is_complete() {
        EXIT_OK
    } else if totals.unknown > 0 {
        EXIT_UNKNOWN
    } else {
        match tally.worst {
            Some(delivery) => delivery.exit_code(),
            None => EXIT_REFUSED,
        }
    })
}

fn dry_run(
    client: &Client,
    target: &marketo_campaign::CampaignTarget,
    source: marketo_campaign::Source,
    leads: impl Iterator<Item = Result<LeadKey, Error>>,
    json: bool,
    size: usize,
) -> Result<u8, Error> {
    let mut chunk = Vec::with_capacity(size);
    let mut first = true;
    let mut flush = |chunk: Vec<LeadKey>| -> Result<(), Error> {
        let request = CampaignRequest::new(target.clone(), chunk)?.with_source(source);
        let mut plans = client.plan(&request)?;
        if !first {
            // The token request is made once per run.
            plans.retain(|p| !p.url.contains("/oauth/token") && !p.url.contains("/ims/token"));
        }
        first = false;
        print_plans(&plans, json)
    };
    for lead in leads {
        chunk.push(lead?);
        if chunk.len() == size {
            flush(std::mem::take(&mut chunk))?;
        }
    }
    if !chunk.is_empty() {
        flush(chunk)?;
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows() {
        assert_eq!(
            csv_fields(r#"a,"b,c","d""e",,"#),
            ["a", "b,c", "d\"e", "", ""]
        );
        let format = Format::detect("id,Email,name").unwrap();
        assert_eq!(
            format.parse("7,\"x@y.z\",Jo").unwrap().to_string(),
            "EMAIL:x@y.z"
        );
        let format = Format::detect("value,type").unwrap();
        assert_eq!(format.parse("123,idnum").unwrap().to_string(), "IDNUM:123");
        assert!(Format::detect("EMAIL:a@b.c").is_ok_and(|f| matches!(f, Format::Pairs)));
        assert!(Format::detect("name,phone").is_err());
        assert!(
            Format::detect("email,sfdcleadid").is_err(),
            "two key columns is ambiguous"
        );
    }

    /// What a record's sink was asked to do, in order.
    #[derive(Clone, Default)]
    struct Spy {
        events: std::sync::Arc<Mutex<Vec<String>>>,
        fail_sync: bool,
    }

    impl Spy {
        fn events(&self) -> Vec<String> {
            self.events.lock().unwrap().clone()
        }

        fn push(&self, event: String) {
            self.events.lock().unwrap().push(event);
        }
    }

    impl Write for Spy {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.push(format!("write {}", String::from_utf8_lossy(buf)));
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.push("flush".into());
            Ok(())
        }
    }

    impl RecordSink for Spy {
        fn sync(&mut self) -> std::io::Result<crate::record_sink::Durability> {
            self.push("sync".into());
            if self.fail_sync {
                return Err(std::io::Error::other("disk on fire"));
            }
            Ok(crate::record_sink::Durability::Synced)
        }
    }

    fn spied(spy: &Spy) -> Record {
        Record::with_sink(true, "r".repeat(40), 100, Box::new(spy.clone()))
    }

    #[test]
    fn a_sending_line_is_synced_before_its_chunk_is_sent() {
        let spy = Spy::default();
        let record = spied(&spy);
        let leads = [LeadKey::id(1).unwrap(), LeadKey::id(2).unwrap()];
        record.sending(0, &leads).unwrap();
        let events = spy.events();
        let sending = events
            .iter()
            .position(|e| e.contains(r#""status":"sending""#))
            .unwrap_or_else(|| panic!("no sending line: {events:?}"));
        let flushed = events.iter().rposition(|e| e == "flush");
        let synced = events.iter().rposition(|e| e == "sync");
        assert!(
            matches!((flushed, synced), (Some(f), Some(s)) if sending < f && f < s),
            "the sending line must be written, flushed, then synced before sending() \
             returns: {events:?}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("sync"),
            "{events:?}"
        );
    }

    #[test]
    fn a_failed_sync_stops_the_run_before_the_chunk_is_sent() {
        let spy = Spy {
            fail_sync: true,
            ..Spy::default()
        };
        let record = spied(&spy);
        let leads = [LeadKey::id(1).unwrap()];
        assert!(record.sending(0, &leads).is_err());
        let (message, code) = record.failure().expect("the record failed");
        assert!(
            message.contains("sync") && message.contains("disk on fire"),
            "{message}"
        );
        assert!(message.contains("nothing was sent"), "{message}");
        assert_eq!(code, EXIT_INVALID);
        // The next chunk is refused too, without touching the sink.
        let before = spy.events().len();
        assert!(record.sending(1, &leads).is_err());
        assert_eq!(spy.events().len(), before);
    }

    #[test]
    fn outcome_lines_are_flushed_not_synced() {
        let spy = Spy::default();
        let record = spied(&spy);
        record
            .line(&serde_json::json!({"summary": {}}), || "summary".into())
            .unwrap();
        assert!(
            !spy.events().contains(&"sync".to_owned()),
            "{:?}",
            spy.events()
        );
    }

    #[test]
    fn a_regular_file_is_synced_a_pipe_is_not() {
        let dir = std::env::temp_dir().join(format!("marketo-record-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.jsonl");
        let mut sink = Synced::file(std::fs::File::create(&path).unwrap()).unwrap();
        assert!(sink.syncs());
        writeln!(sink, "{{}}").unwrap();
        sink.flush().unwrap();
        assert_eq!(sink.sync().unwrap(), crate::record_sink::Durability::Synced);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        std::fs::remove_dir_all(&dir).unwrap();
        #[cfg(target_os = "linux")]
        {
            // A character device (as a terminal or /dev/null) cannot be
            // synced: the line is flushed only.
            let null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            let mut sink = Synced::file(null).unwrap();
            assert!(!sink.syncs());
            assert_eq!(
                sink.sync().unwrap(),
                crate::record_sink::Durability::Flushed
            );
        }
    }

    #[test]
    fn a_chunk_served_in_parts_names_its_served_leads_in_the_record() {
        let leads: Vec<LeadKey> = (1..=4).map(|i| LeadKey::id(i).unwrap()).collect();
        let err = Error::PartlyServed {
            served: leads[..2].to_vec(),
            leads: 4,
            parts: 2,
            accepted: 1,
            failure: None,
        };
        let chunk = ChunkReport::failed(leads, "stub", err);
        let line = chunk_line(&chunk, "r");
        assert_eq!(
            line["served"],
            serde_json::json!(["IDNUM:1", "IDNUM:2"]),
            "{line}"
        );
        assert_eq!(line["delivery"], "unknown", "{line}");
    }

    #[test]
    fn lines_skip_comments_and_number_errors() {
        let text = "# leads\n\nEMAIL:a@b.c\r\nIDNUM:x\n";
        let mut lines = LeadLines::new(std::io::Cursor::new(text), "f".into());
        assert_eq!(lines.next().unwrap().unwrap().to_string(), "EMAIL:a@b.c");
        let err = lines.next().unwrap().unwrap_err();
        assert!(err.to_string().contains("f:4"), "{err}");
        assert!(lines.next().is_none());
    }
}
