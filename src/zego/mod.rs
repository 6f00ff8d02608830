//! ZEGOCLOUD's wire format: body decoding, the common keys every callback carries, and the
//! signature.

pub mod body;
pub mod product;
pub mod signature;
pub mod zim;

use std::borrow::Cow;

pub use body::{sniff, DecodeError, Encoding, Node, Object, RawCallback, Scalar};
pub use product::{classify, Product, ProductSet, TimestampUnit};
pub use signature::{
    check_clock_skew, sign, CallbackSecrets, Secret, SecretsError, SignatureRefusal,
};

/// Keys of the values every callback carries, matched ignoring ASCII case, so `Event`, `AppId`,
/// `Appid`, `Timestamp`… all match.
pub const EVENT_KEYS: &[&str] = &["event"];
/// Digital Human and Cloud Player number their events under `EventType` (AI Agent named them
/// there before 2025-04).
pub const EVENT_TYPE_KEYS: &[&str] = &["eventtype"];
pub const APP_ID_KEYS: &[&str] = &["appid", "app_id"];
pub const TIMESTAMP_KEYS: &[&str] = &["timestamp"];
pub const NONCE_KEYS: &[&str] = &["nonce"];
pub const SIGNATURE_KEYS: &[&str] = &["signature"];

/// The Cloud Recording status callback has no `event` key; it is recognised by `event_type`.
pub const CLOUD_RECORDING_MARKER: &str = "event_type";
/// The name the bridge gives the Cloud Recording status callback in `zego_event`.
pub const CLOUD_RECORDING_EVENT: &str = "cloud_recording_status";
/// The name the bridge gives the end-of-recording callback of projects opened before
/// 2021-11-29 ("录制结束回调", doc-zh.zego.im article 5861): the same keys, but `file_info` at the
/// top and no `detail`, and other meanings for `event_type` 1 to 3.
pub const CLOUD_RECORDING_LEGACY_EVENT: &str = "cloud_recording_ended";
/// The key only the legacy end-of-recording callback has at its top level.
const CLOUD_RECORDING_LEGACY_MARKER: &str = "file_info";
/// The key only the v2 status callback has.
const CLOUD_RECORDING_V2_MARKER: &str = "detail";

/// Why a decoded body is not a usable callback. Shown to the caller in a 400 reply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MalformedCallback {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("`{0}` must be a string or a number")]
    NotScalar(&'static str),
    #[error("`appid` must be an unsigned integer, got {0:?}")]
    BadAppId(String),
    #[error("`timestamp` must be {unit}, got {value:?}")]
    BadTimestamp { value: String, unit: &'static str },
}

/// The keys common to every callback, read and checked for form but not yet verified.
#[derive(Debug)]
pub struct CommonFields<'a> {
    /// The `event` value (else `EventType`'s, a number as its decimal text), or
    /// [`CLOUD_RECORDING_EVENT`] for a Cloud Recording callback.
    pub event: Cow<'a, str>,
    pub app_id: u64,
    /// `timestamp` exactly as it arrived: the signature is computed over this text.
    pub timestamp_text: Cow<'a, str>,
    /// `timestamp` in Unix milliseconds, whatever unit the product sends it in.
    pub sent_at_ms: i64,
    pub nonce: Cow<'a, str>,
    pub signature: Cow<'a, str>,
}

impl<'a> CommonFields<'a> {
    /// Reads the common keys of an RTC callback (see [`CommonFields::read_for`]).
    pub fn read(root: &Object<'a>) -> Result<Self, MalformedCallback> {
        Self::read_for(root, Product::Rtc)
    }

    /// Reads the common keys of a callback of `product` and marks them consumed, so they do
    /// not reappear under `extra`.
    pub fn read_for(root: &Object<'a>, product: Product) -> Result<Self, MalformedCallback> {
        let event = match scalar(root, EVENT_KEYS, "event")? {
            Some(event) if !event.trim().is_empty() => event,
            _ => match scalar(root, EVENT_TYPE_KEYS, "EventType")? {
                Some(number) if !number.trim().is_empty() => number,
                _ if root.get(CLOUD_RECORDING_MARKER).is_some() => {
                    // v2 puts everything under `detail`; the legacy callback has `file_info` at
                    // the top (an empty list when nothing was recorded).
                    if root.get(CLOUD_RECORDING_LEGACY_MARKER).is_some()
                        && root.get(CLOUD_RECORDING_V2_MARKER).is_none()
                    {
                        Cow::Borrowed(CLOUD_RECORDING_LEGACY_EVENT)
                    } else {
                        Cow::Borrowed(CLOUD_RECORDING_EVENT)
                    }
                }
                _ => return Err(MalformedCallback::Missing("event")),
            },
        };
        let app_id_text = required(root, APP_ID_KEYS, "appid")?;
        let app_id = app_id_text
            .trim()
            .parse::<u64>()
            .map_err(|_| MalformedCallback::BadAppId(app_id_text.clone().into_owned()))?;
        let timestamp_text = required(root, TIMESTAMP_KEYS, "timestamp")?;
        let unit = product.timestamp_unit();
        let sent_at_ms = timestamp_text
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|timestamp| unit.to_millis(timestamp))
            .ok_or_else(|| MalformedCallback::BadTimestamp {
                value: timestamp_text.clone().into_owned(),
                unit: unit.describe(),
            })?;
        let nonce = required(root, NONCE_KEYS, "nonce")?;
        let signature = required(root, SIGNATURE_KEYS, "signature")?;
        Ok(CommonFields {
            event,
            app_id,
            timestamp_text,
            sent_at_ms,
            nonce,
            signature,
        })
    }
}

impl CommonFields<'_> {
    /// `timestamp` in Unix seconds (rounded down), for the clock-skew check.
    pub fn sent_at_secs(&self) -> i64 {
        self.sent_at_ms.div_euclid(1000)
    }

    /// Checks the signature against the configured secrets, over the `timestamp` and `nonce`
    /// exactly as they arrived.
    pub fn verify(&self, secrets: &CallbackSecrets) -> Result<(), SignatureRefusal> {
        secrets.verify(
            self.app_id,
            &self.timestamp_text,
            &self.nonce,
            &self.signature,
        )
    }
}

fn required<'a>(
    root: &Object<'a>,
    keys: &[&str],
    name: &'static str,
) -> Result<Cow<'a, str>, MalformedCallback> {
    match scalar(root, keys, name)? {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(MalformedCallback::Missing(name)),
    }
}

fn scalar<'a>(
    root: &Object<'a>,
    keys: &[&str],
    name: &'static str,
) -> Result<Option<Cow<'a, str>>, MalformedCallback> {
    let Some(entry) = keys.iter().find_map(|key| root.get(key)) else {
        return Ok(None);
    };
    entry.mark_used();
    let scalar = entry
        .node
        .scalar()
        .map_err(|_| MalformedCallback::NotScalar(name))?;
    Ok(scalar.map(|scalar| scalar.text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<(u64, String, i64, String), MalformedCallback> {
        let callback = RawCallback::decode(body.as_bytes(), sniff(body.as_bytes()))?;
        let common = CommonFields::read(&callback.root)?;
        let sent_at_secs = common.sent_at_secs();
        Ok((
            common.app_id,
            common.event.into_owned(),
            sent_at_secs,
            common.timestamp_text.into_owned(),
        ))
    }

    #[test]
    fn common_keys_in_every_casing_and_type() {
        let expected = (1, "x".to_owned(), 5, "5".to_owned());
        assert_eq!(
            read(r#"{"event":"x","appid":"1","timestamp":"5","nonce":"n","signature":"s"}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            read(r#"{"Event":"x","Appid":1,"Timestamp":5,"Nonce":"n","Signature":"s"}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            read(r#"{"Event":"x","AppId":1,"Timestamp":5,"Nonce":7,"Signature":"s"}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            read("event=x&appid=1&timestamp=5&nonce=n&signature=s"),
            Ok(expected)
        );
    }

    #[test]
    fn numeric_timestamp_and_nonce_are_signed_as_their_decimal_text() {
        let nonce = "7407715855877898783";
        let signature = sign("k", "1724743250", nonce);
        let body = format!(
            r#"{{"Event":"censor_audio_v2_status","AppId":1,"Timestamp":1724743250,"Nonce":{nonce},"Signature":"{signature}"}}"#
        );
        let callback = RawCallback::decode(body.as_bytes(), Encoding::Json).unwrap();
        let common = CommonFields::read(&callback.root).unwrap();
        assert_eq!(common.nonce, nonce, "a 19-digit nonce keeps every digit");
        let secrets = CallbackSecrets::parse("k").unwrap();
        assert_eq!(common.verify(&secrets), Ok(()));
        // Through an f64 the nonce would become 7407715855877898752 and the signature would fail.
        assert_ne!(
            sign(
                "k",
                "1724743250",
                &(nonce.parse::<f64>().unwrap() as u64).to_string()
            ),
            signature
        );
    }

    #[test]
    fn cloud_recording_is_recognised_without_an_event_key() {
        let (app_id, event, ..) = read(
            r#"{"app_id":4155768915,"event_type":1,"timestamp":"5","nonce":"n","signature":"s"}"#,
        )
        .unwrap();
        assert_eq!(
            (app_id, event.as_str()),
            (4155768915, CLOUD_RECORDING_EVENT)
        );
    }

    #[test]
    fn legacy_cloud_recording_is_told_apart_by_file_info_at_the_top() {
        let event = |body: &str| read(body).unwrap().1;
        assert_eq!(
            event(
                r#"{"app_id":1,"event_type":3,"file_info":[],"timestamp":"5","nonce":"n","signature":"s"}"#
            ),
            CLOUD_RECORDING_LEGACY_EVENT
        );
        assert_eq!(
            event(
                r#"{"app_id":1,"event_type":1,"detail":{"file_info":[]},"timestamp":"5","nonce":"n","signature":"s"}"#
            ),
            CLOUD_RECORDING_EVENT
        );
        assert_eq!(
            event(
                r#"{"app_id":1,"event_type":1,"detail":{},"file_info":[],"timestamp":"5","nonce":"n","signature":"s"}"#
            ),
            CLOUD_RECORDING_EVENT,
            "detail says v2"
        );
    }

    #[test]
    fn missing_and_malformed_common_keys() {
        assert_eq!(
            read(r#"{"appid":1}"#),
            Err(MalformedCallback::Missing("event"))
        );
        assert_eq!(
            read(r#"{"event":"x","appid":1,"timestamp":5,"nonce":"n"}"#),
            Err(MalformedCallback::Missing("signature"))
        );
        assert_eq!(
            read(r#"{"event":"x","appid":"one","timestamp":5,"nonce":"n","signature":"s"}"#),
            Err(MalformedCallback::BadAppId("one".into()))
        );
        assert_eq!(
            read(r#"{"event":"x","appid":1,"timestamp":"timestamp","nonce":"n","signature":"s"}"#),
            Err(MalformedCallback::BadTimestamp {
                value: "timestamp".into(),
                unit: "Unix time in seconds"
            })
        );
        assert_eq!(
            read(r#"{"event":{"a":1},"appid":1,"timestamp":5,"nonce":"n","signature":"s"}"#),
            Err(MalformedCallback::NotScalar("event"))
        );
    }
}
