//! Start the offline sandbox, request a campaign by name with tokens over
//! SOAP, and print what the sandbox journaled.
//!
//! ```text
//! cargo run --example sandbox_request
//! ```

use marketo_campaign::{CampaignRequest, CampaignRequester, CampaignTarget, LeadKey, ProgramToken};
use marketo_sandbox::Sandbox;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start()?;
    let client = sandbox.soap_client()?;
    let request = CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [
                ProgramToken::new("{{my.WebinarTitle}}", "Migrating off SOAP")?,
                ProgramToken::new("{{my.JoinLink}}", "https://example.com/join?id=42&lang=en")?,
            ],
        ),
        [
            "EMAIL:lead@company.com".parse::<LeadKey>()?,
            LeadKey::id(1002201)?,
        ],
    )?;
    let outcome = client.request_campaign(&request)?;
    println!("{client}: {} chunk(s) accepted", outcome.accepted_chunks());
    for entry in sandbox.journal() {
        println!("{}", serde_json::to_string(&entry)?);
    }
    Ok(())
}
