//! REST wire formats: the request bodies and the response envelope.

use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, RestCode};
use crate::request::ProgramToken;

/// `{"input":{"leads":[{"id":N}],"tokens":[{"name":..,"value":..}]}}`
/// (triggerCampaignUsingPOST's `TriggerCampaignRequest`).
#[derive(Serialize)]
pub(crate) struct TriggerBody<'a> {
    pub(crate) input: TriggerInput<'a>,
}

#[derive(Serialize)]
pub(crate) struct TriggerInput<'a> {
    pub(crate) leads: Vec<LeadId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<TokenRef<'a>>,
}

/// `{"id":N}` (`InputLead`).
#[derive(Serialize)]
pub(crate) struct LeadId {
    pub(crate) id: u32,
}

/// `{"name":"{{my.X}}","value":".."}` (`Token`).
#[derive(Serialize)]
pub(crate) struct TokenRef<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
}

impl<'a> TokenRef<'a> {
    pub(crate) fn all(tokens: &'a [ProgramToken]) -> Vec<TokenRef<'a>> {
        tokens
            .iter()
            .map(|t| TokenRef {
                name: t.name(),
                value: t.value(),
            })
            .collect()
    }
}

/// `{"input":{"runAt":..,"tokens":[..]}}` (`ScheduleCampaignRequest`).
#[derive(Serialize)]
pub(crate) struct ScheduleBody<'a> {
    pub(crate) input: ScheduleInput<'a>,
}

#[derive(Serialize)]
pub(crate) struct ScheduleInput<'a> {
    #[serde(rename = "runAt", skip_serializing_if = "Option::is_none")]
    pub(crate) run_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tokens: Vec<TokenRef<'a>>,
}

#[derive(Deserialize)]
struct ErrorItem {
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    success: bool,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default = "Vec::new")]
    result: Vec<T>,
    #[serde(default)]
    more_result: bool,
    next_page_token: Option<String>,
}

/// A successful answer's records and paging.
pub(crate) struct Page<T> {
    pub(crate) result: Vec<T>,
    pub(crate) next_page_token: Option<String>,
}

/// Reads a REST answer: `success:true` gives the records; `success:false`
/// gives [`Error::Rest`] with the first error's code; a 4xx without JSON is
/// [`Error::HttpStatus`]; anything else is [`Error::Protocol`].
pub(crate) fn read<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
) -> Result<Page<T>, Error> {
    let protocol = |reason: String| Error::Protocol {
        status,
        reason,
        body: excerpt(body, 512),
    };
    let parsed: Envelope<T> = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(_) if (400..500).contains(&status) => {
            return Err(Error::HttpStatus {
                status,
                body: excerpt(body, 512),
            })
        }
        Err(e) => return Err(protocol(format!("not a Marketo REST answer: {e}"))),
    };
    if status != 200 {
        return Err(protocol(format!("HTTP {status}")));
    }
    if !parsed.success {
        let first = parsed
            .errors
            .into_iter()
            .next()
            .ok_or_else(|| protocol("success:false without errors".into()))?;
        let code = match &first.code {
            serde_json::Value::String(s) => s.trim().parse().unwrap_or(0),
            serde_json::Value::Number(n) => {
                n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
            }
            _ => 0,
        };
        return Err(Error::Rest {
            code: RestCode::from_code(code),
            message: first.message,
        });
    }
    Ok(Page {
        result: parsed.result,
        next_page_token: parsed.next_page_token.filter(|_| parsed.more_result),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Delivery;

    #[test]
    fn trigger_body_matches_the_swagger_shape() {
        let tokens = [ProgramToken::new("{{my.A}}", "x \"y\"").unwrap()];
        let body = TriggerBody {
            input: TriggerInput {
                leads: vec![LeadId { id: 1 }, LeadId { id: 2 }],
                tokens: TokenRef::all(&tokens),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"input":{"leads":[{"id":1},{"id":2}],"tokens":[{"name":"{{my.A}}","value":"x \"y\""}]}}"#
        );
        let body = TriggerBody {
            input: TriggerInput {
                leads: vec![LeadId { id: 1 }],
                tokens: Vec::new(),
            },
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"input":{"leads":[{"id":1}]}}"#
        );
    }

    #[test]
    fn answers() {
        let ok = br#"{"requestId":"1#2","success":true,"result":[{"id":4496}]}"#;
        let page: Page<serde_json::Value> = read(200, ok).unwrap();
        assert_eq!(page.result[0]["id"], 4496);
        let err = read::<serde_json::Value>(
            200,
            br#"{"requestId":"1","success":false,"errors":[{"code":"606","message":"Max rate limit"}]}"#,
        )
        .err()
        .unwrap();
        assert_eq!(err.rest_code(), Some(RestCode::RateLimited));
        assert_eq!(err.delivery(), Delivery::Refused);
        let err = read::<serde_json::Value>(200, b"").err().unwrap();
        assert_eq!(err.delivery(), Delivery::Unknown);
        let err = read::<serde_json::Value>(410, b"Gone").err().unwrap();
        assert!(matches!(err, Error::HttpStatus { status: 410, .. }));
        let err = read::<serde_json::Value>(502, b"Bad gateway")
            .err()
            .unwrap();
        assert_eq!(err.delivery(), Delivery::Unknown);
    }
}
