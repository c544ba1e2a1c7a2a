//! Plain HTTP calls for tests: an agent that reads every answer whatever
//! its status, and one-line GET and POST that return status and body.

use std::time::Duration;

/// An agent that reads every answer whatever its status (the tests assert
/// on 4xx and 5xx bodies), with a 20 s limit per call.
pub fn agent() -> ureq::Agent {
    agent_with(Duration::from_secs(20))
}

/// [`agent`] with another limit per call.
pub fn agent_with(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// `GET url`: status and body. Panics on a transport failure.
pub fn get(url: &str) -> (u16, String) {
    read(agent().get(url).call())
}

/// `POST url` with `headers` and `body`: status and body. Panics on a
/// transport failure.
pub fn post(url: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> (u16, String) {
    let mut request = agent().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    read(request.send(body.as_ref()))
}

/// Status and body of an answer. Panics on a transport failure.
pub fn read(answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
    let mut response = answer.expect("the server answers");
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .expect("the answer is UTF-8 text");
    (status, body)
}
