//! The server-side SOAP codec (`soap::read_envelope` and what follows it)
//! on arbitrary request bodies: never panics; whatever it reads as a valid
//! `requestCampaign` is a request the client writes back into an envelope
//! that reads into the very same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketo_campaign::soap::{read_envelope, Authenticator, Operation};
use marketo_campaign::{FixedClock, SoapClient, MAX_LEADS_PER_CALL};

const USER: &str = "bigcorp1_461839624B16E06BA2D663";
const KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";
const TIMESTAMP: &str = "2010-04-09T14:04:54-07:00";

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = read_envelope(data) else {
        return;
    };
    let clock = FixedClock::parse(TIMESTAMP).expect("timestamp");
    let _ = Authenticator::new(USER, KEY).clock(clock).verify(envelope.auth());
    let _ = envelope.check_soap_action(Some("http://www.marketo.com/mktows/requestCampaign"));
    let Ok(Operation::RequestCampaign(call)) = envelope.into_operation() else {
        return;
    };
    assert!(call.lead_keys().len() <= MAX_LEADS_PER_CALL);
    let Ok(request) = call.to_request() else {
        return;
    };
    // Only requests SOAP can carry come out of a SOAP envelope.
    let client = SoapClient::builder("http://127.0.0.1:9/soap/mktows/2_9", USER, KEY)
        .clock(clock)
        .build()
        .expect("client");
    let body = client
        .envelope(&request, request.leads())
        .expect("a request read from SOAP can be written as SOAP");
    let again = read_envelope(&body).expect("the client's envelope reads");
    match again.into_operation() {
        Ok(Operation::RequestCampaign(call)) => {
            assert_eq!(call.to_request().expect("valid again"), request)
        }
        other => panic!("read back as {other:?}"),
    }
});
