//! Adobe Journey Optimizer (AJO): API-triggered campaigns as a backend.
//!
//! [`AjoClient`] runs a [`CampaignRequest`](crate::CampaignRequest) as
//! unitary executions of an API-triggered campaign
//! (`POST https://platform.adobe.io/ajo/im/executions/unitary`), 20
//! recipients a call, with an Adobe IMS OAuth server-to-server token
//! (`POST https://ims-na1.adobelogin.com/ims/token/v3`, cached and renewed
//! before it expires). Marketo-shaped requests reach their AJO campaign
//! through a [`CampaignMap`]; program tokens become each recipient's
//! `context`.
//!
//! ```
//! use marketo_sandbox::Sandbox;
//! use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, ProgramToken};
//!
//! let sandbox = Sandbox::start()?;
//! let client = sandbox.ajo_client()?;
//! let target = CampaignTarget::id_with_tokens(1234, [ProgramToken::new("{{my.WebinarTitle}}", "Rust")?]);
//! let outcome = client.request_campaign(&CampaignRequest::new(target, [LeadKey::email("lead@company.com")?])?)?;
//! let entry = &sandbox.journal()[0];
//! assert_eq!(entry.api, "ajo");
//! let execution = entry.ajo.as_ref().expect("an AJO execution");
//! assert_eq!(outcome.chunks()[0].execution_id(), Some(execution.execution_id.as_str()));
//! assert_eq!(execution.recipients[0].context["WebinarTitle"], "Rust");
//! # Ok::<(), marketo_campaign::Error>(())
//! ```

mod client;
mod map;

pub use client::{
    AjoClient, AjoClientBuilder, AUDIENCE_PATH, DEFAULT_ENDPOINT, DEFAULT_IMS_TOKEN_URL,
    DEFAULT_SCOPES, MAX_RECIPIENTS_PER_CALL, UNITARY_PATH,
};
pub use map::CampaignMap;

/// The answer reader, for the fuzz targets.
#[cfg(feature = "fuzzing")]
pub(crate) fn read_answer_for_fuzzing(
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
) -> Result<String, crate::Error> {
    let response = crate::transport::HttpResponse {
        status,
        body: body.to_vec(),
        retry_after: retry_after.map(str::to_owned),
    };
    client::read_answer(&response, &crate::clock::SystemClock, &[])
}
