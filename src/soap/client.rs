//! `SoapClient`: `requestCampaign` over HTTP, one chunk of 100 leads per call.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono_tz::Tz;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::plan::PlannedRequest;
use crate::request::CampaignTarget;
use crate::request::{CampaignRequest, LeadKey};
use crate::requester::{send_in_chunks, CampaignRequester, ChunkAccepted, Outcome};
use crate::schedule::{CampaignScheduler, ScheduleRequest, Scheduled};
use crate::secret::Secret;
use crate::soap::envelope::{
    write_request_campaign, write_schedule_campaign, AuthHeader, ScheduleParams,
};
use crate::soap::response::read_response;
use crate::soap::signature::{w3c_timestamp, SignatureCache};
use crate::transport::{check_endpoint, env_var, http_setters, Caller, HttpConfig};

/// The `SOAPAction` header of `requestCampaign`.
pub const SOAP_ACTION_REQUEST_CAMPAIGN: &str = "\"http://www.marketo.com/mktows/requestCampaign\"";
/// The `SOAPAction` header of `scheduleCampaign`.
pub const SOAP_ACTION_SCHEDULE_CAMPAIGN: &str =
    "\"http://www.marketo.com/mktows/scheduleCampaign\"";
const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// The default zone of `requestTimestamp`, Marketo's own.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::America::Los_Angeles;

/// A client for Marketo's SOAP API (`mktows`).
///
/// Cheap to clone; clones share one connection pool. Each call is signed
/// afresh, so long runs never send a stale timestamp.
///
/// ```no_run
/// use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, SoapClient};
///
/// let client = SoapClient::builder(
///     "https://123-ABC-456.mktoapi.com/soap/mktows/2_9",
///     "bigcorp1_461839624B16E06BA2D663",
///     "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66",
/// )
/// .build()?;
/// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::email("lead@company.com")?])?;
/// let outcome = client.request_campaign(&request)?;
/// assert!(outcome.is_complete());
/// # Ok::<(), marketo_campaign::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SoapClient {
    endpoint: String,
    user_id: String,
    encryption_key: Secret,
    timezone: Tz,
    clock: Arc<dyn Clock>,
    caller: Caller,
    /// This second's header, shared by clones.
    signatures: Arc<SignatureCache>,
    /// The last envelope's buffer, for the next call.
    spare: Arc<SpareBuffer>,
}

/// Builds a [`SoapClient`]. Every setter documents its default.
#[derive(Debug, Clone)]
pub struct SoapClientBuilder {
    endpoint: String,
    user_id: String,
    encryption_key: Secret,
    timezone: Tz,
    clock: Arc<dyn Clock>,
    http: HttpConfig,
}

impl SoapClientBuilder {
    /// Reads `MARKETO_SOAP_ENDPOINT`, `MARKETO_SOAP_USER_ID`,
    /// `MARKETO_SOAP_ENCRYPTION_KEY` and, optionally, `MARKETO_SOAP_TIMEZONE`
    /// (an IANA zone name such as `America/Los_Angeles`).
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = SoapClient::builder(
            env_var("MARKETO_SOAP_ENDPOINT")?,
            env_var("MARKETO_SOAP_USER_ID")?,
            env_var("MARKETO_SOAP_ENCRYPTION_KEY")?,
        );
        if let Ok(zone) = env_var("MARKETO_SOAP_TIMEZONE") {
            builder = builder.timezone(parse_timezone(&zone)?);
        }
        Ok(builder)
    }

    /// The zone of `requestTimestamp`. Default: `America/Los_Angeles`.
    pub fn timezone(mut self, zone: Tz) -> Self {
        self.timezone = zone;
        self
    }

    /// The clock that dates each signature. Default: the system clock.
    /// Pin it (with [`FixedClock`](crate::FixedClock)) to reproduce a signature.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    http_setters!();

    /// Checks the configuration and builds the client.
    pub fn build(self) -> Result<SoapClient, Error> {
        check_endpoint("SOAP endpoint", &self.endpoint, self.http.allow_plain_http)?;
        if self.user_id.trim().is_empty() {
            return Err(Error::Config("the SOAP user id is empty".into()));
        }
        if self.encryption_key.expose().is_empty() {
            return Err(Error::Config("the SOAP encryption key is empty".into()));
        }
        crate::request::check_xml_text(&self.user_id)
            .map_err(|reason| Error::Config(format!("the SOAP user id: {reason}")))?;
        Ok(SoapClient {
            endpoint: self.endpoint,
            user_id: self.user_id,
            encryption_key: self.encryption_key,
            timezone: self.timezone,
            clock: self.clock,
            caller: Caller::new(&self.http),
            signatures: Arc::default(),
            spare: Arc::default(),
        })
    }
}

/// Parses an IANA time zone name.
fn parse_timezone(name: &str) -> Result<Tz, Error> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| Error::Config(format!("{name:?} is not an IANA time zone name")))
}

impl SoapClient {
    /// A builder for the endpoint (e.g.
    /// `https://123-ABC-456.mktoapi.com/soap/mktows/2_9`), the SOAP user id and
    /// the encryption key.
    pub fn builder(
        endpoint: impl Into<String>,
        user_id: impl Into<String>,
        encryption_key: impl Into<Secret>,
    ) -> SoapClientBuilder {
        SoapClientBuilder {
            endpoint: endpoint.into(),
            user_id: user_id.into(),
            encryption_key: encryption_key.into(),
            timezone: DEFAULT_TIMEZONE,
            clock: Arc::new(SystemClock),
            http: HttpConfig::default(),
        }
    }

    /// The endpoint this client posts to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The HTTP requests [`request_campaign`](CampaignRequester::request_campaign)
    /// would send, one per chunk, without sending anything.
    pub fn plan(&self, request: &CampaignRequest) -> Result<Vec<PlannedRequest>, Error> {
        request
            .chunks()
            .map(|leads| {
                let body = self.envelope(request, leads)?;
                Ok(PlannedRequest {
                    method: "POST",
                    url: self.endpoint.clone(),
                    headers: BTreeMap::from([
                        ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
                        (
                            "SOAPAction".to_owned(),
                            SOAP_ACTION_REQUEST_CAMPAIGN.to_owned(),
                        ),
                    ]),
                    body: String::from_utf8_lossy(&body).into_owned(),
                })
            })
            .collect()
    }

    /// Signs now and writes an envelope with `write`.
    fn signed(
        &self,
        capacity: usize,
        write: impl FnOnce(&mut Vec<u8>, &AuthHeader<'_>) -> std::io::Result<()>,
    ) -> Result<Vec<u8>, Error> {
        let signed = self.signatures.at(
            self.clock.now(),
            self.timezone,
            self.encryption_key.expose(),
            &self.user_id,
        );
        let auth = AuthHeader {
            user_id: &self.user_id,
            signature: &signed.signature,
            timestamp: &signed.timestamp,
        };
        let mut body = self.spare.take();
        body.reserve(capacity);
        write(&mut body, &auth)
            .map_err(|e| Error::Config(format!("writing the envelope failed: {e}")))?;
        Ok(body)
    }

    /// The exact bytes this client posts for one chunk of `request`: the
    /// `requestCampaign` envelope for `leads` (at most
    /// [`MAX_LEADS_PER_CALL`](crate::MAX_LEADS_PER_CALL)), signed now. For
    /// callers with their own HTTP stack; read the answer with
    /// [`read_request_campaign_response`](crate::soap::read_request_campaign_response).
    ///
    /// ```
    /// use marketo_campaign::{CampaignRequest, CampaignTarget, FixedClock, LeadKey, SoapClient};
    /// let client = SoapClient::builder("https://123-ABC-456.mktoapi.com/soap/mktows/2_9", "user", "key")
    ///     .clock(FixedClock::parse("2010-04-09T14:04:54-07:00")?)
    ///     .build()?;
    /// let request = CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1)?])?;
    /// let body = client.envelope(&request, request.leads())?;
    /// assert!(body.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    /// # Ok::<(), marketo_campaign::Error>(())
    /// ```
    pub fn envelope(&self, request: &CampaignRequest, leads: &[LeadKey]) -> Result<Vec<u8>, Error> {
        expressible(request)?;
        if leads.len() > crate::MAX_LEADS_PER_CALL {
            return Err(Error::invalid(
                "lead list",
                format!(
                    "{} leads in one call; Marketo reads {} and ignores the rest",
                    leads.len(),
                    crate::MAX_LEADS_PER_CALL
                ),
            ));
        }
        // The writer reserves what the envelope needs.
        self.signed(0, |out, auth| {
            write_request_campaign(out, auth, request, leads)
        })
    }

    /// Posts the envelope `envelope` writes, signed afresh for each attempt,
    /// paced by the limiter and repeated as the retry policy allows.
    fn post(
        &self,
        action: &str,
        envelope: impl Fn() -> Result<Vec<u8>, Error>,
        success_element: &str,
    ) -> Result<(), Error> {
        self.caller.with_retries(self, |_| {
            let body = envelope()?;
            let response = self.caller.post(
                &self.endpoint,
                &[("Content-Type", CONTENT_TYPE), ("SOAPAction", action)],
                &body,
            );
            self.spare.put(body);
            let response = response?;
            read_response(response.status, &response.body, success_element)
        })
    }

    fn send_chunk(
        &self,
        request: &CampaignRequest,
        leads: &[LeadKey],
    ) -> Result<ChunkAccepted, Error> {
        log::debug!(
            "{self}: requestCampaign {} for {} leads",
            request.target(),
            leads.len()
        );
        self.post(
            SOAP_ACTION_REQUEST_CAMPAIGN,
            || self.envelope(request, leads),
            "successRequestCampaign",
        )?;
        Ok(ChunkAccepted::default())
    }
}

impl fmt::Display for SoapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Soap({})", self.endpoint)
    }
}

/// One envelope buffer kept between calls (a 100-lead envelope is about
/// 11 KB; allocating and freeing it on every call cost more than writing
/// it). Shared by clones: a caller that finds it taken, or finds none,
/// allocates; a buffer grown past 64 KiB is not kept.
#[derive(Default)]
struct SpareBuffer(std::sync::Mutex<Option<Vec<u8>>>);

impl SpareBuffer {
    const MAX_KEPT: usize = 64 * 1024;

    /// The spare buffer, emptied, or a new one.
    fn take(&self) -> Vec<u8> {
        let spare = self.0.try_lock().ok().and_then(|mut slot| slot.take());
        let mut buffer = spare.unwrap_or_default();
        buffer.clear();
        buffer
    }

    /// Keeps `buffer` for the next call, if there is room.
    fn put(&self, buffer: Vec<u8>) {
        if buffer.capacity() > Self::MAX_KEPT {
            return;
        }
        if let Ok(mut slot) = self.0.try_lock() {
            if slot.is_none() {
                *slot = Some(buffer);
            }
        }
    }
}

impl fmt::Debug for SpareBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An envelope holds the signature: its bytes are not shown.
        f.write_str("SpareBuffer")
    }
}

/// SOAP's `requestCampaign` takes `campaignId` alone, or name + program +
/// tokens: an id with tokens cannot be sent (REST can), nor an AJO
/// campaign.
fn expressible(request: &CampaignRequest) -> Result<(), Error> {
    match request.target() {
        CampaignTarget::Id { tokens, .. } if !tokens.is_empty() => Err(Error::invalid(
            "program tokens",
            "SOAP requestCampaign takes a campaign id alone; to pass tokens, name the campaign and its program, or send over REST (--backend rest or auto)",
        )),
        CampaignTarget::Ajo { .. } => Err(Error::invalid(
            "campaign",
            "an Adobe Journey Optimizer campaign runs over AJO only (AjoClient, --backend ajo), not over SOAP",
        )),
        _ => Ok(()),
    }
}

impl CampaignRequester for SoapClient {
    /// Refuses a campaign id with tokens as not sent (SOAP cannot express
    /// it; [`Fallback`](crate::Fallback) then serves it over REST).
    fn request_campaign(&self, request: &CampaignRequest) -> Result<Outcome, Error> {
        expressible(request)?;
        send_in_chunks(request, self.max_leads_per_call(), "soap", |_, leads| {
            self.send_chunk(request, leads)
        })
    }

    /// 100: Marketo's `requestCampaign` reads 100 lead keys and silently
    /// ignores the rest.
    fn max_leads_per_call(&self) -> usize {
        crate::MAX_LEADS_PER_CALL
    }
}

impl CampaignScheduler for SoapClient {
    /// `scheduleCampaign`: needs the campaign by name and program (SOAP has
    /// no id form); `campaignRunAt` is written in the client's time zone.
    fn schedule_campaign(&self, request: &ScheduleRequest) -> Result<Scheduled, Error> {
        let CampaignTarget::Named {
            campaign,
            program,
            tokens,
        } = request.target()
        else {
            return Err(Error::invalid(
                "campaign",
                "SOAP scheduleCampaign names the campaign by name and program, not by id",
            ));
        };
        let run_at = request.run_at().map(|t| w3c_timestamp(t, self.timezone));
        let params = ScheduleParams {
            program,
            campaign,
            run_at: run_at.as_deref(),
            tokens,
        };
        self.post(
            SOAP_ACTION_SCHEDULE_CAMPAIGN,
            || {
                self.signed(1024, |out, auth| {
                    write_schedule_campaign(out, auth, &params)
                })
            },
            "successScheduleCampaign",
        )?;
        Ok(Scheduled {
            id: None,
            backend: "soap".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::RetryPolicy;

    #[test]
    fn the_spare_buffer_is_reused_emptied_and_bounded() {
        let spare = SpareBuffer::default();
        assert!(spare.take().is_empty());
        let mut buffer = spare.take();
        buffer.extend_from_slice(b"an earlier envelope");
        let capacity = buffer.capacity();
        spare.put(buffer);
        let reused = spare.take();
        assert!(reused.is_empty());
        assert_eq!(reused.capacity(), capacity);
        // Taken: the next caller allocates; too big: not kept.
        assert_eq!(spare.take().capacity(), 0);
        spare.put(Vec::with_capacity(SpareBuffer::MAX_KEPT + 1));
        assert_eq!(spare.take().capacity(), 0);
        assert_eq!(format!("{spare:?}"), "SpareBuffer");
    }

    /// Every call's body is exactly its own envelope, whatever the call
    /// before wrote into the buffer it reuses.
    #[test]
    fn a_reused_buffer_sends_exactly_the_envelope() {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let handle = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for _ in 0..3 {
                let mut request = server.recv().unwrap();
                let mut body = Vec::new();
                request.as_reader().read_to_end(&mut body).unwrap();
                bodies.push(body);
                let answer =
                    tiny_http::Response::from_string(crate::soap::server::SUCCESS_REQUEST_CAMPAIGN);
                request.respond(answer).unwrap();
            }
            bodies
        });
        let client = SoapClient::builder(format!("http://{addr}/soap/mktows/2_9"), "user", "key")
            .clock(FixedClock::parse("2010-04-09T14:04:54-07:00").unwrap())
            .retry(RetryPolicy::never())
            .rate_limit(None)
            .build()
            .unwrap();
        let long = CampaignRequest::new(
            CampaignTarget::id(4496),
            (1..=100).map(|i| LeadKey::email(format!("lead{i}@company.com")).unwrap()),
        )
        .unwrap();
        let short =
            CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(7).unwrap()]).unwrap();
        for request in [&long, &short, &long] {
            client.request_campaign(request).unwrap();
        }
        let bodies = handle.join().unwrap();
        for (body, request) in bodies.iter().zip([&long, &short, &long]) {
            assert_eq!(body, &client.envelope(request, request.leads()).unwrap());
        }
    }
}
