//! From the backend's errors to the SOAP faults legacy code already
//! handles.

use crate::error::{Delivery, Error, RestCode, SoapCode};
use crate::soap::Fault;

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
            _ => internal(err),
        },
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
