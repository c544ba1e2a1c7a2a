//! The `AuthenticationHeader` signature: HMAC-SHA1 over timestamp + user id.

use chrono::{DateTime, Datelike, Offset, Timelike, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Formats `time` as Marketo expects `requestTimestamp`: W3C, seconds
/// precision, with a colon in the offset, in `zone`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use marketo_campaign::soap::w3c_timestamp;
/// let t = Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap();
/// assert_eq!(w3c_timestamp(t, chrono_tz::America::Los_Angeles), "2010-04-09T14:04:54-07:00");
/// ```
pub fn w3c_timestamp(time: DateTime<Utc>, zone: Tz) -> String {
    let local = time.with_timezone(&zone);
    let offset = local.offset().fix().local_minus_utc();
    let t = local.naive_local();
    // Written by hand: chrono's `format` parses its pattern on every call.
    // Years outside 0..=9999, offsets with seconds (local mean time before
    // standard zones) and leap seconds are left to chrono, whose output
    // this matches byte for byte everywhere else.
    if !(0..=9999).contains(&t.year()) || offset % 60 != 0 || t.nanosecond() >= 1_000_000_000 {
        return local.format(W3C_FORMAT).to_string();
    }
    let minutes = offset.unsigned_abs() / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    let mut out = String::with_capacity(25);
    for (separator, value, width) in [
        (None, t.year().unsigned_abs(), 4),
        (Some('-'), t.month(), 2),
        (Some('-'), t.day(), 2),
        (Some('T'), t.hour(), 2),
        (Some(':'), t.minute(), 2),
        (Some(':'), t.second(), 2),
        (Some(sign), minutes / 60, 2),
        (Some(':'), minutes % 60, 2),
    ] {
        out.extend(separator);
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    out
}

/// `requestTimestamp`'s format, in chrono's terms.
const W3C_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%:z";

/// The `requestSignature`: lowercase hex of HMAC-SHA1 keyed with the
/// encryption key, over `timestamp` followed by `user_id`.
///
/// ```
/// use marketo_campaign::soap::request_signature;
/// let sig = request_signature(
///     "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66",
///     "2010-04-09T14:04:54-07:00",
///     "bigcorp1_461839624B16E06BA2D663",
/// );
/// assert_eq!(sig, "ffbff4d4bef354807481e66dc7540f7890523a87");
/// ```
pub fn request_signature(encryption_key: &str, timestamp: &str, user_id: &str) -> String {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(encryption_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(user_id.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(40);
    for byte in mac.finalize().into_bytes() {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xF)]));
    }
    hex
}

/// A header's timestamp and signature, for the second they were made in.
#[derive(PartialEq, Eq)]
pub(crate) struct Signed {
    /// The Unix second, and whether it is a leap second (written `:60`).
    second: (i64, bool),
    pub(crate) timestamp: String,
    pub(crate) signature: String,
}

/// The last header a client signed, shared by its clones: a timestamp has
/// seconds precision, so every call within the same second carries the
/// same timestamp and signature, computed once (the HMAC, the date in the
/// client's zone) instead of on every call. The bytes sent are the same.
#[derive(Default)]
pub(crate) struct SignatureCache(std::sync::Mutex<Option<std::sync::Arc<Signed>>>);

impl SignatureCache {
    /// The timestamp and signature for `now`, made or reused.
    pub(crate) fn at(
        &self,
        now: DateTime<Utc>,
        zone: Tz,
        encryption_key: &str,
        user_id: &str,
    ) -> std::sync::Arc<Signed> {
        use std::sync::PoisonError;
        let second = (now.timestamp(), now.nanosecond() >= 1_000_000_000);
        // Held while signing (once a second, about a microsecond), so that
        // concurrent callers sign a second once and never put back an
        // older one.
        let mut cached = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(signed) = cached.as_ref().filter(|s| s.second == second) {
            return std::sync::Arc::clone(signed);
        }
        let timestamp = w3c_timestamp(now, zone);
        let signature = request_signature(encryption_key, &timestamp, user_id);
        let signed = std::sync::Arc::new(Signed {
            second,
            timestamp,
            signature,
        });
        *cached = Some(std::sync::Arc::clone(&signed));
        signed
    }
}

impl std::fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signature is derived from the key: not shown.
        f.write_str("SignatureCache")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const USER: &str = "bigcorp1_461839624B16E06BA2D663";
    const KEY: &str = "899756834129871744AAEE88DDCC77CDEEDEC1AAAD66";

    #[test]
    fn one_signature_per_second_the_same_as_signing_afresh() {
        let cache = SignatureCache::default();
        let zone = chrono_tz::America::Los_Angeles;
        let t = Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap();
        let first = cache.at(t, zone, KEY, USER);
        assert_eq!(first.timestamp, "2010-04-09T14:04:54-07:00");
        assert_eq!(first.signature, "ffbff4d4bef354807481e66dc7540f7890523a87");
        // Later in the same second: the same header, not signed again.
        let later = cache.at(t + chrono::Duration::milliseconds(999), zone, KEY, USER);
        assert!(std::sync::Arc::ptr_eq(&first, &later));
        // The next second, and a leap second, are signed afresh.
        for next in [
            t + chrono::Duration::seconds(1),
            t - chrono::Duration::milliseconds(1),
        ] {
            let signed = cache.at(next, zone, KEY, USER);
            let timestamp = w3c_timestamp(next, zone);
            assert_eq!(signed.timestamp, timestamp);
            assert_eq!(signed.signature, request_signature(KEY, &timestamp, USER));
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        // 23:59:59.9 and the leap second 23:59:60.5 share a Unix second.
        let before = cache.at(leap - chrono::Duration::milliseconds(600), zone, KEY, USER);
        let signed = cache.at(leap, zone, KEY, USER);
        assert_ne!(before.timestamp, signed.timestamp);
        assert_eq!(signed.timestamp, w3c_timestamp(leap, zone));
        assert!(
            signed.timestamp.ends_with(":60-08:00"),
            "{}",
            signed.timestamp
        );
        assert_eq!(format!("{cache:?}"), "SignatureCache");
    }

    #[test]
    fn published_vector() {
        let t = Utc.with_ymd_and_hms(2010, 4, 9, 21, 4, 54).unwrap();
        let ts = w3c_timestamp(t, chrono_tz::America::Los_Angeles);
        assert_eq!(ts, "2010-04-09T14:04:54-07:00");
        assert_eq!(
            request_signature(KEY, &ts, USER),
            "ffbff4d4bef354807481e66dc7540f7890523a87"
        );
    }

    proptest::proptest! {
        /// The hand-written format is chrono's, byte for byte: any instant
        /// chrono holds (years far outside 0..=9999, leap seconds), any zone
        /// (historic offsets in seconds included).
        #[test]
        fn timestamps_are_chronos_format(
            secs in proptest::prop_oneof![
                -62_135_596_800i64..253_402_300_800, // years 1..=9999
                1_000_000_000i64..2_000_000_000,
                -8_000_000_000_000i64..8_000_000_000_000,
            ],
            nanos in proptest::prop_oneof![0u32..1_000_000_000, 1_000_000_000u32..2_000_000_000],
            zone in proptest::sample::select(&chrono_tz::TZ_VARIANTS[..]),
        ) {
            // A leap second exists only at :59 UTC.
            let nanos = if (secs + 1).rem_euclid(60) == 0 { nanos } else { nanos % 1_000_000_000 };
            let Some(time) = DateTime::from_timestamp(secs, nanos) else {
                return Ok(());
            };
            // Local years out of range panic in chrono itself; stay inside.
            if !(-200_000..=200_000).contains(&time.year()) {
                return Ok(());
            }
            let chrono = time.with_timezone(&zone).format(W3C_FORMAT).to_string();
            proptest::prop_assert_eq!(w3c_timestamp(time, zone), chrono);
        }
    }

    #[test]
    fn timestamps_at_the_edges_are_chronos_format() {
        let zones = [
            chrono_tz::UTC,
            chrono_tz::America::Los_Angeles,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::St_Johns,
            chrono_tz::Pacific::Kiritimati,
            chrono_tz::Pacific::Pago_Pago,
        ];
        let times = [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1850, 6, 1, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap(),
            DateTime::from_timestamp(1_483_228_799, 1_500_000_000).unwrap(), // leap second
        ];
        for zone in zones {
            for time in times {
                let chrono = time.with_timezone(&zone).format(W3C_FORMAT).to_string();
                assert_eq!(w3c_timestamp(time, zone), chrono, "{time:?} in {zone}");
            }
        }
        // Local mean time, an offset in seconds: left to chrono.
        let lmt = Utc.with_ymd_and_hms(1850, 6, 1, 12, 0, 0).unwrap();
        assert_eq!(
            w3c_timestamp(lmt, chrono_tz::America::Los_Angeles),
            "1850-06-01T04:07:02-07:53"
        );
    }

    #[test]
    fn timestamps_follow_the_zone() {
        let winter = Utc.with_ymd_and_hms(2013, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            w3c_timestamp(winter, chrono_tz::America::Los_Angeles),
            "2013-01-01T04:00:00-08:00"
        );
        assert_eq!(
            w3c_timestamp(winter, chrono_tz::UTC),
            "2013-01-01T12:00:00+00:00"
        );
        assert_eq!(
            w3c_timestamp(winter, chrono_tz::Asia::Kolkata),
            "2013-01-01T17:30:00+05:30"
        );
    }
}
