//! Property tests of webhook rendering: whatever the token values (quotes,
//! `&`, `<`, newlines, non-ASCII, `{{…}}`), a JSON template renders to JSON
//! that parses and holds the values unchanged, a form template to a form
//! body that decodes back to them, a URL to one whose query decodes back to
//! them, and headers never gain a line.

use marketo_campaign::webhook::{TokenContext, Webhook};
use marketo_campaign::FixedClock;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

fn clock() -> FixedClock {
    FixedClock::parse("2026-11-25T15:00:00Z").unwrap()
}

fn webhook(encoding: &str, template: &str) -> Webhook {
    let definition = serde_json::json!({
        "url": "https://hooks.example.com/r?title={{my.WebinarTitle}}&fixed=%26&x=1",
        "request_type": "POST",
        "template": template,
        "request_token_encoding": encoding,
        "headers": [{"name": "X-Title", "value": "t={{my.WebinarTitle}}"}],
    });
    Webhook::from_json(&definition.to_string()).unwrap()
}

fn context(title: &str, link: &str, email: &str) -> TokenContext {
    TokenContext::new(&clock())
        .lead([("email", email)])
        .program("Webinars", [("{{my.WebinarTitle}}", "default title")])
        .request_tokens([("{{my.WebinarTitle}}", title), ("{{my.JoinLink}}", link)])
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"&<>'=+%\\\\\n\r\t{}é→😀 ]{0,24}",
        Just("{{my.JoinLink}}".to_owned()),
        Just("}} {{lead.Email Address}} {{".to_owned()),
    ]
}

proptest! {
    #[test]
    fn json_bodies_parse_and_keep_the_values(title in hostile(), link in hostile(), email in hostile()) {
        let hook = webhook("json", r#"{"title": {{my.WebinarTitle}}, "join": {{my.JoinLink}}, "email": {{lead.Email Address}}, "n": 1}"#);
        let request = hook.render(&context(&title, &link, &email));
        let json: serde_json::Value = serde_json::from_str(&request.body)
            .map_err(|e| TestCaseError::fail(format!("{e}: {}", request.body)))?;
        prop_assert_eq!(json["title"].as_str(), Some(title.as_str()));
        prop_assert_eq!(json["join"].as_str(), Some(link.as_str()));
        prop_assert_eq!(json["email"].as_str(), Some(email.as_str()));
        prop_assert_eq!(json["n"].as_i64(), Some(1));
    }

    #[test]
    fn form_bodies_decode_back(title in hostile(), link in hostile(), email in hostile()) {
        let hook = webhook("form", "title={{my.WebinarTitle}}&join={{my.JoinLink}}&email={{lead.Email Address}}");
        let request = hook.render(&context(&title, &link, &email));
        let pairs: Vec<(String, String)> = request
            .body
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        prop_assert_eq!(pairs, vec![
            ("title".to_owned(), title.clone()),
            ("join".to_owned(), link),
            ("email".to_owned(), email),
        ]);
    }

    #[test]
    fn urls_and_headers_keep_their_shape_and_decode_back(title in hostile()) {
        let request = webhook("none", "").render(&context(&title, "l", "e"));
        let (base, query) = request.url.split_once('?').unwrap();
        prop_assert_eq!(base, "https://hooks.example.com/r");
        let params: Vec<&str> = query.split('&').collect();
        prop_assert_eq!(params.len(), 3);
        prop_assert_eq!(percent_decode_str(params[0].trim_start_matches("title=")).decode_utf8().unwrap(), title.as_str());
        prop_assert_eq!(&params[1..], &["fixed=%26", "x=1"]);
        let header = request.header("X-Title").unwrap();
        prop_assert!(header.bytes().all(|b| b == b' ' || b.is_ascii_graphic()), "{:?}", header);
        prop_assert_eq!(percent_decode_str(header).decode_utf8().unwrap(), format!("t={title}"));
    }
}

#[test]
fn the_request_overrides_the_program_default_and_missing_tokens_stay() {
    let hook = webhook("json", "{{my.WebinarTitle}} {{my.Other}}");
    let request = hook.render(
        &TokenContext::new(&clock()).program("Webinars", [("{{my.WebinarTitle}}", "default")]),
    );
    assert_eq!(request.body, r#""default" {{my.Other}}"#);
    assert!(request.warnings.iter().any(|w| w.contains("{{my.Other}}")));
    let request = hook.render(&context("given", "l", "e"));
    assert!(request.body.starts_with(r#""given" "#), "{}", request.body);
}
