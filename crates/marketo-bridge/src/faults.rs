//! From the backend's errors to the SOAP faults legacy code already
//! handles.

use marketo_campaign::soap::Fault;
use marketo_campaign::Limit;
use marketo_campaign::{Delivery, Error, RestCode, SoapCode};

/// The message of the fault sent when the outcome is unknown.
pub(crate) const MAY_HAVE_RUN: &str =
    "the outcome is unknown: the campaign may have run; do not resend this request";

/// The SOAP fault for a backend error, as documented in the README's fault
/// table:
///
/// - an *unknown* delivery (the campaign may have run) is 20011 with a
///   message that says so and says not to resend: never success, never a
///   code legacy code retries (20016, 20023, 20024);
/// - a request that ran in part (some chunks accepted) is 20011 saying how
///   much ran and not to resend it whole;
/// - REST codes map to Marketo's SOAP codes: 1013 → 20113, 1004 → 20103,
///   606 → 20023, 615 → 20024, 607 → 20015, 603 → 20013, 1003 → 20110,
///   anything else → 20011;
/// - a campaign look-up that found no (or several) campaigns → 20113, a
///   request REST cannot express (a `LEADOWNEREMAIL` key) → 20110;
/// - Journey Optimizer's 429 → 20023;
/// - a call the REST client's limiter would keep waiting past its budget
///   ([`Error::Throttled`], not sent) → 20023 (rate) or 20024
///   (concurrency), the answers SOAP workers retry;
/// - the bridge's own REST credentials refused, its configuration, a
///   gateway's 4xx → 20011 (nothing ran).
pub(crate) fn fault_for(err: &Error) -> Fault {
    if err.delivery() == Delivery::Unknown {
        return Fault::new(SoapCode::InternalError, format!("{MAY_HAVE_RUN} ({err})"));
    }
    match err {
        Error::Incomplete(outcome) if outcome.accepted_chunks() > 0 => Fault::new(
            SoapCode::InternalError,
            format!(
                "the campaign ran for part of the leads ({} of {} chunks of 100 keys); \
                 do not resend this request whole ({err})",
                outcome.accepted_chunks(),
                outcome.chunks().len()
            ),
        ),
        Error::Incomplete(outcome) => match outcome.first_failure() {
            Some((_, inner)) => fault_for(inner),
            None => internal(err),
        },
        Error::Rest { code, message } => Fault::new(soap_code_for(*code), message.clone()),
        Error::ReadFailed { source, .. } => match source.as_ref() {
            Error::Rest { code, message } => Fault::new(soap_code_for(*code), message.clone()),
            throttled @ Error::Throttled { .. } => fault_for(throttled),
            _ => internal(err),
        },
        // Journey Optimizer's 429 behind the bridge (after the retries).
        Error::RateLimited { .. } => Fault::new(SoapCode::RateLimited, err.to_string()),
        Error::Throttled { limit, budget } => Fault::new(
            match limit {
                Limit::Rate => SoapCode::RateLimited,
                Limit::Concurrency => SoapCode::ConcurrencyLimited,
            },
            format!(
                "the bridge's calls to Marketo are at the {limit} limit and this call would wait over {budget:?}; it was not sent: try again later"
            ),
        ),
        Error::LimiterUnavailable { .. } => Fault::new(
            SoapCode::RateLimited,
            "the bridge's shared limiter cannot be reached; this call was not sent: try again later",
        ),
        Error::QuotaSpent { resets_at, .. } => Fault::new(
            SoapCode::RequestLimitExceeded,
            format!("the bridge's daily quota of calls to Marketo is spent; this call was not sent: try again after {resets_at}"),
        ),
        Error::SoapFault { code, message } => Fault::new(*code, message.clone()),
        Error::Lookup(message) => Fault::new(SoapCode::CampaignNotFound, message.clone()),
        Error::InvalidInput { .. } => Fault::new(SoapCode::BadParameter, err.to_string()),
        _ => internal(err),
    }
}

fn internal(err: &Error) -> Fault {
    Fault::new(
        SoapCode::InternalError,
        format!("the bridge could not serve the request; the campaign did not run ({err})"),
    )
}

/// Marketo's SOAP code for a REST code.
pub(crate) fn soap_code_for(code: RestCode) -> SoapCode {
    match code {
        RestCode::CampaignNotFound => SoapCode::CampaignNotFound,
        RestCode::LeadNotFound => SoapCode::LeadNotFound,
        RestCode::RateLimited => SoapCode::RateLimited,
        RestCode::ConcurrencyLimited => SoapCode::ConcurrencyLimited,
        RestCode::DailyQuotaReached => SoapCode::RequestLimitExceeded,
        RestCode::AccessDenied => SoapCode::AccessDenied,
        RestCode::InvalidValue => SoapCode::BadParameter,
        _ => SoapCode::InternalError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(code: u32) -> Error {
        Error::Rest {
            code: RestCode::from_code(code),
            message: "m".into(),
        }
    }

    #[test]
    fn rest_codes_map_to_marketo_soap_codes() {
        for (rest_code, soap) in [
            (1013, 20113),
            (1004, 20103),
            (606, 20023),
            (615, 20024),
            (607, 20015),
            (603, 20013),
            (1003, 20110),
            (610, 20011),
        ] {
            assert_eq!(
                fault_for(&rest(rest_code)).code().code(),
                soap,
                "{rest_code}"
            );
        }
    }

    /// The limiter's "not sent, past the budget", directly or during a
    /// look-up, is the code SOAP workers retry.
    #[test]
    fn a_call_past_the_wait_budget_is_20023_or_20024() {
        let budget = std::time::Duration::from_secs(30);
        for (limit, soap) in [(Limit::Rate, 20023), (Limit::Concurrency, 20024)] {
            let throttled = Error::Throttled { limit, budget };
            let in_look_up = Error::ReadFailed {
                call: "lead look-up".into(),
                source: Box::new(throttled.clone()),
            };
            for err in [throttled, in_look_up] {
                let fault = fault_for(&err);
                assert_eq!(fault.code().code(), soap, "{err}");
                assert!(fault.message().contains("not sent"), "{}", fault.message());
            }
        }
    }

    #[test]
    fn unknown_outcomes_say_may_have_run_and_are_not_retryable() {
        for err in [
            rest(604),
            rest(611),
            Error::Transport {
                delivery: Delivery::Unknown,
                message: "reset".into(),
                source: None,
            },
        ] {
            let fault = fault_for(&err);
            assert_eq!(fault.code(), SoapCode::InternalError);
            assert!(fault.message().contains("may have run"), "{fault}");
            assert!(fault.message().contains("do not resend"), "{fault}");
        }
        let refused = fault_for(&rest(610));
        assert!(!refused.message().contains("may have run"), "{refused}");
    }

    #[test]
    fn lookups_map_to_their_codes() {
        let lookup = Error::ReadFailed {
            call: "lead look-up".into(),
            source: Box::new(rest(606)),
        };
        assert_eq!(fault_for(&lookup).code(), SoapCode::RateLimited);
        let campaign = Error::Lookup("no campaign".into());
        assert_eq!(fault_for(&campaign).code(), SoapCode::CampaignNotFound);
    }
}
