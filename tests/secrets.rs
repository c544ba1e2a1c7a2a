//! Secrets (the SOAP encryption key, the REST client secret, the access
//! tokens) never appear in `Debug`, `Display`, error messages, logs, dry-run
//! output or panics of the library's clients (the command line's are in
//! crates/marketo-campaign-cli/tests/secrets.rs).
//!
//! `test_support::secrets` captures every log line of this test binary (the
//! crate's, the sandbox's, ureq's) at `Trace` and every panic.

use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Delivery, Error, Fallback, LeadKey,
    Outcome, ProgramToken, RestClient, Secret, SoapClient,
};
use marketo_sandbox::{Sandbox, SandboxConfig};
use test_support::secrets::{init, Secrets, WRONG_KEY, WRONG_SECRET};

/// Everything a value shows.
fn shown(value: &(impl std::fmt::Debug + ?Sized)) -> String {
    format!("{value:?} {value:#?}")
}

fn shown_result(result: &Result<Outcome, Error>) -> String {
    match result {
        Ok(outcome) => shown(outcome),
        Err(err) => format!("{} {}", shown(err), err),
    }
}

/// Calls `f`, which must not panic.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => panic!("{what} panicked"),
    }
}

fn request(lead: &str) -> CampaignRequest {
    CampaignRequest::new(CampaignTarget::id(4496), [lead.parse::<LeadKey>().unwrap()]).unwrap()
}

fn named_request() -> CampaignRequest {
    CampaignRequest::new(
        CampaignTarget::named(
            "Send Webinar Reminder",
            "Webinars",
            [ProgramToken::new("{{my.WebinarTitle}}", "Rust").unwrap()],
        ),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap()
}

fn quiet_soap(builder: marketo_campaign::SoapClientBuilder) -> SoapClient {
    test_support::quiet_client!(builder, Duration::from_secs(20))
}

fn quiet_rest(builder: marketo_campaign::RestClientBuilder) -> RestClient {
    test_support::quiet_client!(builder, Duration::from_secs(20))
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

// --- Library --------------------------------------------------------------

#[test]
fn clients_errors_outcomes_logs_and_plans_show_no_secret() {
    init();
    let sandbox = Sandbox::start_with(SandboxConfig::new()).unwrap();
    let mut secrets = Secrets::new(sandbox.soap_encryption_key(), sandbox.client_secret());
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut see = |what: &str, text: String| seen.push((what.to_owned(), text));

    // Builders and clients, before and after use.
    let soap_builder = sandbox.soap_client_builder();
    see("soap builder", shown(&soap_builder));
    let soap = quiet_soap(soap_builder);
    let rest_builder = sandbox.rest_client_builder();
    see("rest builder", shown(&rest_builder));
    let rest = quiet_rest(rest_builder);
    see(
        "secret",
        shown(&Secret::new(sandbox.client_secret().to_owned())),
    );

    // SOAP: success, several chunks, a fault.
    let result = no_panic("soap", || soap.request_campaign(&named_request()));
    assert!(result.as_ref().unwrap().is_complete());
    see("soap outcome", shown_result(&result));
    let many = CampaignRequest::new(
        CampaignTarget::id(4496),
        (1..=150).map(|i| LeadKey::id(i).unwrap()),
    )
    .unwrap();
    let result = no_panic("soap incomplete", || soap.request_campaign(&many));
    assert!(matches!(result, Err(Error::Incomplete(_))), "{result:?}");
    see("soap incomplete", shown_result(&result));
    let wrong_key = quiet_soap(SoapClient::builder(
        sandbox.soap_endpoint(),
        sandbox.soap_user_id(),
        WRONG_KEY,
    ));
    let result = no_panic("wrong key", || {
        wrong_key.request_campaign(&request("EMAIL:lead@company.com"))
    });
    let err = result.as_ref().unwrap_err();
    assert_eq!(err.soap_code().map(|c| c.code()), Some(20014), "{err:?}");
    see("wrong key error", shown_result(&result));
    see(
        "wrong key client",
        format!("{} {}", shown(&wrong_key), wrong_key),
    );

    // REST: success (look-ups), a token renewal after 602, a wrong secret.
    let result = no_panic("rest", || rest.request_campaign(&named_request()));
    assert!(result.as_ref().unwrap().is_complete(), "{result:?}");
    see("rest outcome", shown_result(&result));
    secrets.add_token(sandbox.addr(), sandbox.client_id());
    see(
        "rest client with a token",
        format!("{} {}", shown(&rest), rest),
    );
    sandbox.expire_tokens();
    let result = no_panic("rest renewal", || {
        rest.request_campaign(&request("EMAIL:anotherlead@company.com"))
    });
    assert!(result.as_ref().unwrap().is_complete(), "{result:?}");
    see("rest renewed outcome", shown_result(&result));
    secrets.add_token(sandbox.addr(), sandbox.client_id());
    see("rest client renewed", format!("{} {}", shown(&rest), rest));
    assert_eq!(secrets.len(), 6, "two distinct tokens");
    let logs = test_support::secrets::logs();
    assert!(
        logs.iter()
            .any(|(_, _, m)| m.contains("602") && m.contains("renewing")),
        "no renewal after 602"
    );
    // 601: tokens of one sandbox shown to another.
    let other = Sandbox::start().unwrap();
    let stranger = quiet_rest(
        RestClient::builder(
            other.rest_endpoint(),
            other.client_id(),
            other.client_secret(),
        )
        .identity(sandbox.identity_endpoint()),
    );
    let result = no_panic("601", || {
        stranger.request_campaign(&request("IDNUM:1002200"))
    });
    // The first call, the lead look-up, is refused: a failed read.
    let code = match result.as_ref().unwrap_err() {
        Error::ReadFailed { source, .. } => source.rest_code(),
        other => other.rest_code(),
    };
    assert_eq!(code.map(|c| c.code()), Some(601), "{result:?}");
    see("601 error", shown_result(&result));
    see("601 client", format!("{} {}", shown(&stranger), stranger));
    let wrong_secret = quiet_rest(
        marketo_campaign::RestClient::builder(
            sandbox.rest_endpoint(),
            sandbox.client_id(),
            WRONG_SECRET,
        )
        .identity(sandbox.identity_endpoint()),
    );
    let result = no_panic("wrong secret", || {
        wrong_secret.request_campaign(&request("IDNUM:1002200"))
    });
    assert!(matches!(result, Err(Error::Auth(_))), "{result:?}");
    see("wrong secret error", shown_result(&result));
    see(
        "wrong secret client",
        format!("{} {}", shown(&wrong_secret), wrong_secret),
    );

    // Fallback: SOAP retired (410), then falls back to REST.
    let fallback = Fallback::new(soap.clone(), rest.clone());
    sandbox.retire_soap(Some(410));
    let result = no_panic("fallback", || {
        fallback.request_campaign(&request("IDNUM:1002201"))
    });
    assert_eq!(result.as_ref().unwrap().chunks()[0].backend(), "rest");
    see("fallback outcome", shown_result(&result));
    see("fallback", format!("{} {}", shown(&fallback), fallback));
    sandbox.retire_soap(None);
    let fallback = Fallback::new(wrong_key.clone(), wrong_secret.clone());
    let result = no_panic("fallback wrong", || {
        fallback.request_campaign(&request("IDNUM:1002201"))
    });
    assert!(result.is_err());
    see("fallback wrong", shown_result(&result));

    // Nothing listening.
    let port = closed_port();
    let soap_closed = quiet_soap(SoapClient::builder(
        format!("http://127.0.0.1:{port}/soap/mktows/2_9"),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    ));
    let rest_closed = quiet_rest(RestClient::builder(
        format!("http://127.0.0.1:{port}"),
        sandbox.client_id(),
        sandbox.client_secret(),
    ));
    for client in [&soap_closed as &dyn CampaignRequester, &rest_closed] {
        let result = no_panic("closed port", || {
            client.request_campaign(&request("IDNUM:1002200"))
        });
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.delivery(), Delivery::NotSent, "{err:?}");
        see(
            "closed port",
            format!("{} {}", shown_result(&result), client),
        );
    }
    let fallback = Fallback::new(soap_closed, rest_closed);
    let result = no_panic("fallback closed", || {
        fallback.request_campaign(&request("IDNUM:1002200"))
    });
    see("fallback closed", shown_result(&result));

    // Dry runs: the plans, as the CLI prints them.
    for req in [named_request(), request("IDNUM:1002200"), many.clone()] {
        for plans in [soap.plan(&req).unwrap(), rest.plan(&req).unwrap()] {
            assert!(!plans.is_empty());
            for plan in &plans {
                see("plan", shown(plan));
                see("plan json", serde_json::to_string(plan).unwrap());
            }
        }
        let envelope = soap.envelope(&req, &req.leads()[..1]).unwrap();
        see("envelope", String::from_utf8_lossy(&envelope).into_owned());
    }

    for (what, text) in &seen {
        secrets.assert_absent(what, text);
    }
    secrets.assert_logs_and_panics_clean();
}

// With `log` at `Trace`, ureq writes the raw wire by design: target
// `ureq_proto::util` dumps every request and answer (so `Authorization:
// Bearer` headers and the identity answer), and `ureq::run` shows the token
// request's query (Marketo's identity call takes the credentials as query
// parameters). At `Debug` and above ureq redacts both. The README says never
// to keep `Trace` logs of the `ureq*` targets; the tests above check that
// this crate's own records, at every level, and ureq's below `Trace` carry no
// secret.
