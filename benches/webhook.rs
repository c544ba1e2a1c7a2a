//! Rendering a webhook for one lead: the README's webinar webhook, JSON and
//! form encoded, next to a baseline in the same group: the same body
//! written by hand with `format!` and serde_json's string escaping (what a
//! service's own code would do), so the cost of token parsing shows.
//!
//! Run with `cargo bench --bench webhook -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use marketo_campaign::webhook::{TokenContext, Webhook};
use marketo_campaign::FixedClock;

const TITLE: &str = "Q&A: \"SOAP\" → REST <live>";
const JOIN: &str = "https://example.com/join?a=1&b=2";
const IMAGE: &str = "https://example.com/webinar.png";
const EMAIL: &str = "lead@company.com";

fn webhook(encoding: &str, template: &str) -> Webhook {
    let definition = serde_json::json!({
        "url": "https://webinars.example.com/register?title={{my.WebinarTitle}}",
        "request_type": "POST",
        "template": template,
        "request_token_encoding": encoding,
        "headers": [{"name": "Content-Type", "value": "application/json"}],
    });
    Webhook::from_json(&definition.to_string()).expect("a valid definition")
}

fn render(c: &mut Criterion) {
    let clock = FixedClock::parse("2026-11-25T15:00:00Z").expect("a timestamp");
    let json = webhook(
        "json",
        "{\"email\": {{lead.Email Address}}, \"title\": {{my.WebinarTitle}}, \"join\": {{my.JoinLink}}, \"image\": {{my.WebinarImage}}}",
    );
    let form = webhook(
        "form",
        "email={{lead.Email Address}}&title={{my.WebinarTitle}}&join={{my.JoinLink}}&image={{my.WebinarImage}}",
    );
    let context = || {
        TokenContext::new(&clock)
            .lead([("email", EMAIL)])
            .program("Webinars", [("{{my.WebinarImage}}", IMAGE)])
            .request_tokens([("{{my.WebinarTitle}}", TITLE), ("{{my.JoinLink}}", JOIN)])
    };
    let mut group = c.benchmark_group("webhook_render");
    let ready = context();
    group.bench_function("json", |b| {
        b.iter(|| black_box(&json).render(black_box(&ready)))
    });
    group.bench_function("form", |b| {
        b.iter(|| black_box(&form).render(black_box(&ready)))
    });
    group.bench_function("json_with_context", |b| {
        b.iter(|| black_box(&json).render(&context()))
    });
    group.bench_function("baseline_format_json", |b| {
        b.iter(|| {
            let s = |v: &str| serde_json::to_string(black_box(v)).unwrap_or_default();
            format!(
                "{{\"email\": {}, \"title\": {}, \"join\": {}, \"image\": {}}}",
                s(EMAIL),
                s(TITLE),
                s(JOIN),
                s(IMAGE)
            )
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
