//! The bridge serving TLS itself (`Bridge::serve_tls`): a self-signed
//! certificate made at test time with the `openssl` CLI (skipped with a
//! notice when it is missing, failed instead when `MC_REQUIRE_CLIENTS=1`),
//! a `SoapClient` whose agent trusts only that certificate, and the
//! sandbox journal to see what ran.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use marketo_bridge::{Bridge, RunningBridge};
use marketo_campaign::soap::Authenticator;
use marketo_campaign::{
    CampaignRequest, CampaignRequester, CampaignTarget, Error, HttpConfig, LeadKey, SoapClient,
};
use marketo_sandbox::Sandbox;

/// A self-signed certificate for `127.0.0.1` and its key (PEM), or `None`
/// (after a notice) when the `openssl` CLI is missing.
fn self_signed(name: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    if !crate::bridge::tool_available(
        "openssl",
        &["version"],
        "the openssl CLI",
        "the bridge TLS test: the openssl CLI is missing",
    ) {
        return None;
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("mc-bridge-tls-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // An end-entity certificate (CA:FALSE: webpki refuses a CA certificate
    // as a server's), valid for 127.0.0.1.
    let config = dir.join("openssl.cnf");
    std::fs::write(
        &config,
        "[req]\ndistinguished_name = dn\nx509_extensions = v3\nprompt = no\n\
         [dn]\nCN = 127.0.0.1\n\
         [v3]\nbasicConstraints = critical,CA:FALSE\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
         keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-config")
        .arg(&config)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pems = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    Some(pems)
}

fn setup(cert: &[u8], key: &[u8]) -> (Sandbox, RunningBridge) {
    let sandbox = Sandbox::start().unwrap();
    let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
    let server = Bridge::rest(sandbox.rest_client().unwrap(), auth)
        .serve_tls("127.0.0.1:0".parse().unwrap(), false, cert, key)
        .unwrap();
    (sandbox, server)
}

/// A ureq agent that trusts `cert` only.
fn trusting(cert: &[u8]) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_pem(cert).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

#[test]
fn a_soap_client_runs_a_campaign_through_the_bridge_over_tls() {
    let Some((cert, key)) = self_signed("run") else {
        return;
    };
    let (sandbox, server) = setup(&cert, &key);
    let port = server.addr().port();
    assert!(server.is_tls());
    assert_eq!(
        server.endpoint(),
        format!("https://127.0.0.1:{port}/soap/mktows/2_9")
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let plain_agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    assert!(plain_agent
        .get(&format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .is_err());

    // HTTPS: health, and the WSDL's soap:address is https://.
    let agent = trusting(&cert);
    let mut health = agent
        .get(&format!("https://127.0.0.1:{port}/healthz"))
        .call()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.body_mut().read_to_string().unwrap(), "ok\n");
    let wsdl = agent
        .get(&format!("{}?WSDL", server.endpoint()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        wsdl.contains(&format!(
            "location=\"https://127.0.0.1:{port}/soap/mktows/2_9\""
        )),
        "{wsdl}"
    );

    // A SoapClient over TLS runs a campaign: one REST run in the journal.
    let client = SoapClient::builder(
        server.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .http_config(HttpConfig::default().agent(trusting(&cert)))
    .build()
    .unwrap();
    let request = CampaignRequest::new(
        CampaignTarget::id(4496),
        [LeadKey::email("lead@company.com").unwrap()],
    )
    .unwrap();
    client.request_campaign(&request).unwrap();
    let runs: Vec<_> = sandbox
        .journal()
        .into_iter()
        .map(|e| (e.api, e.campaign_id, e.lead_ids))
        .collect();
    assert_eq!(runs, [("rest".to_owned(), 4496, vec![1002200])]);
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let Some((cert, key)) = self_signed("untrusted") else {
        return;
    };
    let (sandbox, server) = setup(&cert, &key);
    // Default roots (webpki): the self-signed certificate is not trusted.
    let client = SoapClient::builder(
        server.endpoint(),
        sandbox.soap_user_id(),
        sandbox.soap_encryption_key(),
    )
    .build()
    .unwrap();
    let request =
        CampaignRequest::new(CampaignTarget::id(4496), [LeadKey::id(1002200).unwrap()]).unwrap();
    assert!(client.request_campaign(&request).is_err());
    assert!(sandbox.journal().is_empty());
}

#[test]
fn a_missing_or_malformed_certificate_or_key_is_a_config_error() {
    let Some((cert, key)) = self_signed("bad") else {
        return;
    };
    let sandbox = Sandbox::start().unwrap();
    let serve = |cert: &[u8], key: &[u8]| {
        let auth = Authenticator::new(sandbox.soap_user_id(), sandbox.soap_encryption_key());
        Bridge::rest(sandbox.rest_client().unwrap(), auth).serve_tls(
            "127.0.0.1:0".parse().unwrap(),
            false,
            cert,
            key,
        )
    };
    let garbled_key = b"-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----\n";
    for (cert, key) in [
        (&b""[..], &key[..]),
        (&cert[..], &b""[..]),
        (&cert[..], &cert[..]),
        (&key[..], &key[..]),
        (&cert[..], &garbled_key[..]),
    ] {
        match serve(cert, key) {
            Err(Error::Config(message)) => {
                assert!(
                    !message.contains("BEGIN PRIVATE KEY-----\nMII"),
                    "{message}"
                );
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
