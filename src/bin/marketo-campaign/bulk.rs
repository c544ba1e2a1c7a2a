//! `request --leads-file`: streamed bulk runs, JSON lines per chunk, resume.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use marketo_campaign::{
    run_bulk, BulkOptions, BulkSummary, CampaignRequest, ChunkReport, ChunkStatus, Error, LeadKey,
    LeadKeyType, MAX_LEADS_PER_CALL,
};

use crate::{
    build_target, delivery_code, fail, print_plans, Backend, Client, RequestArgs, EXIT_OK,
    EXIT_REFUSED,
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
    /// The format of a file whose first data line is `line`: `TYPE:VALUE`,
    /// or a CSV header.
    fn detect(line: &str) -> Result<Format, String> {
        if line.parse::<LeadKey>().is_ok() {
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
                "{line:?} is neither TYPE:VALUE nor a CSV header with 'type' and 'value' columns \
                 or exactly one column named after a key type (e.g. 'email')"
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
                        reason: format!("{line:?} has no column {}", i + 1),
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
                reason: e.to_string(),
            }));
        }
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
        field: format!("--leads-file {}", path.display()),
        reason: e.to_string(),
    })?;
    Ok(LeadLines::new(
        Box::new(std::io::BufReader::with_capacity(1 << 16, file)),
        path.display().to_string(),
    ))
}

/// What a previous run's `--json` output says about each chunk.
struct Resume {
    /// Chunk index → (its first lead, whether to pass it over).
    chunks: HashMap<usize, (String, bool)>,
    /// Chunks whose outcome was unknown: passed over, and said so.
    unknown: Vec<usize>,
}

impl Resume {
    fn read(path: &Path) -> Result<Resume, Error> {
        let bad = |reason: String| Error::InvalidInput {
            field: format!("--resume {}", path.display()),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut chunks = HashMap::new();
        let mut unknown = Vec::new();
        for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| bad(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| bad(format!("line {}: not JSON: {e}", number + 1)))?;
            let Some(index) = value.get("chunk").and_then(serde_json::Value::as_u64) else {
                continue; // the summary line
            };
            let first = value["first_lead"].as_str().unwrap_or_default().to_owned();
            let served = value["status"] == "accepted";
            let may_have_run = !served && value["delivery"] == "unknown";
            if may_have_run {
                unknown.push(index as usize);
            }
            chunks.insert(index as usize, (first, served || may_have_run));
        }
        Ok(Resume { chunks, unknown })
    }

    fn skip(&self) -> impl Iterator<Item = usize> + '_ {
        self.chunks
            .iter()
            .filter(|(_, (_, skip))| *skip)
            .map(|(index, _)| *index)
    }

    /// Checks that chunk `index` still starts with `first`.
    fn check(&self, index: usize, first: &LeadKey) -> Result<(), Error> {
        match self.chunks.get(&index) {
            Some((recorded, _)) if *recorded != first.to_string() => Err(Error::InvalidInput {
                field: "--resume".into(),
                reason: format!(
                    "chunk {index} started with {recorded} in the previous run but starts with {first} now: \
                     the leads file changed, resuming could run leads twice"
                ),
            }),
            _ => Ok(()),
        }
    }
}

fn chunk_line(chunk: &ChunkReport) -> serde_json::Value {
    let (status, error, delivery) = crate::chunk_status(chunk);
    serde_json::json!({
        "chunk": chunk.index(),
        "first_lead": chunk.leads().first().map(ToString::to_string),
        "leads": chunk.leads().len(),
        "backend": chunk.backend(),
        "status": status,
        "error": error,
        "delivery": delivery,
        "unmatched": chunk.unmatched().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn summary_line(summary: &BulkSummary) -> serde_json::Value {
    serde_json::json!({"summary": {
        "leads": summary.leads,
        "accepted": summary.accepted,
        "failed": summary.failed,
        "not_attempted": summary.not_attempted,
        "skipped": summary.skipped,
        "unmatched": summary.unmatched,
        "complete": summary.is_complete(),
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

/// The leads of `--lead` then of the leads file, checked against the resume
/// record as chunks begin.
fn leads<'a>(
    args: &'a RequestArgs,
    file: LeadLines<Box<dyn BufRead>>,
    resume: Option<&'a Resume>,
) -> impl Iterator<Item = Result<LeadKey, Error>> + 'a {
    let given = args.lead.iter().map(|l| l.parse::<LeadKey>());
    given.chain(file).enumerate().map(move |(n, lead)| {
        let lead = lead?;
        if let (Some(resume), 0) = (resume, n % MAX_LEADS_PER_CALL) {
            resume.check(n / MAX_LEADS_PER_CALL, &lead)?;
        }
        Ok(lead)
    })
}

/// Runs `request --leads-file`.
pub(crate) fn run(args: &RequestArgs, client: &Client) -> u8 {
    match try_run(args, client) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn try_run(args: &RequestArgs, client: &Client) -> Result<u8, Error> {
    let (target, source) = build_target(args)?;
    let path = args
        .leads_file
        .as_deref()
        .ok_or_else(|| Error::Config("no leads file".into()))?;
    let resume = args.resume.as_deref().map(Resume::read).transpose()?;
    if let Some(resume) = &resume {
        let mut unknown: Vec<usize> = resume.unknown.clone();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            eprintln!(
                "not resending {} chunk(s) whose outcome was unknown (they may have run): {unknown:?}",
                unknown.len()
            );
        }
    }
    // A file is checked whole first (and against the resume record), so a
    // bad line sends nothing.
    let total = if path.as_os_str() == "-" {
        None
    } else {
        let mut count = 0;
        for lead in leads(args, open(path)?, resume.as_ref()) {
            lead?;
            count += 1;
        }
        Some(count)
    };
    let leads = leads(args, open(path)?, resume.as_ref());
    if args.dry_run {
        return dry_run(client, &target, source, leads, args.json);
    }
    let mut options = BulkOptions::new().workers(args.workers);
    if args.backend == Backend::Rest || matches!(client, Client::Rest(_)) {
        options = options.chunks_per_request(3);
    }
    if let Some(resume) = &resume {
        options = options.skip(resume.skip());
    }
    let bar = progress(total);
    let stdout = std::io::stdout();
    let json = args.json;
    let bar_ref = &bar;
    let result = run_bulk(
        client.requester(),
        &target,
        source,
        leads,
        &options,
        move |chunk| {
            if json {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{}", chunk_line(chunk));
                let _ = out.flush();
            }
            if let ChunkStatus::Failed(e) = chunk.status() {
                bar_ref.println(format!("chunk {} failed: {e}", chunk.index()));
            }
            bar_ref.inc(chunk.leads().len() as u64);
        },
    );
    bar.finish_and_clear();
    let summary = result?;
    if json {
        println!("{}", summary_line(&summary));
    }
    eprintln!(
        "{}: {} leads; chunks: {} accepted, {} failed, {} not attempted, {} skipped; {} keys matched no lead",
        client.requester(),
        summary.leads,
        summary.accepted,
        summary.failed,
        summary.not_attempted,
        summary.skipped,
        summary.unmatched
    );
    Ok(match summary.worst {
        _ if summary.is_complete() => EXIT_OK,
        Some(delivery) => delivery_code(delivery),
        None => EXIT_REFUSED,
    })
}

fn dry_run(
    client: &Client,
    target: &marketo_campaign::CampaignTarget,
    source: marketo_campaign::Source,
    leads: impl Iterator<Item = Result<LeadKey, Error>>,
    json: bool,
) -> Result<u8, Error> {
    let mut chunk = Vec::with_capacity(MAX_LEADS_PER_CALL);
    let mut first = true;
    let mut flush = |chunk: Vec<LeadKey>| -> Result<(), Error> {
        let request = CampaignRequest::new(target.clone(), chunk)?.with_source(source);
        let mut plans = client.plan(&request)?;
        if !first {
            // The token request is made once per run.
            plans.retain(|p| !p.url.contains("/oauth/token"));
        }
        first = false;
        print_plans(&plans, json)
    };
    for lead in leads {
        chunk.push(lead?);
        if chunk.len() == MAX_LEADS_PER_CALL {
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
