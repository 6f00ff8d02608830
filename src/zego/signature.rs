//! ZEGO's callback signature: SHA-1 over the callback secret, `timestamp` and `nonce`, sorted
//! byte-wise and joined with no separator, written as 40 lowercase hex digits.
//!
//! Only those three values are signed; the body is not covered.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::product::Product;

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Computes the signature ZEGO sends for these inputs.
pub fn sign(secret: &str, timestamp: &str, nonce: &str) -> String {
    hex::encode(digest(secret, timestamp, nonce))
}

fn digest(secret: &str, timestamp: &str, nonce: &str) -> [u8; 20] {
    let mut parts = [secret, timestamp, nonce];
    // `str` orders byte-wise, which is what ZEGO's reference implementations do.
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// A callback secret. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: &str) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// Why a signed callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// Secrets are configured only for other apps. Its text is a mismatch's, so that a client
    /// cannot learn which AppIDs the bridge has secrets for; the metric's reason and the log
    /// line (`unknown_app`) tell the operator.
    #[error("signature does not match")]
    UnknownApp,
    /// No configured secret produces the received signature.
    #[error("signature does not match")]
    Mismatch,
    /// The timestamp is further from the bridge's clock than the configured tolerance.
    #[error("timestamp is outside the allowed clock skew")]
    ClockSkew,
    /// This timestamp, nonce and signature were already used with a different callback.
    #[error("signature was already used for a different callback")]
    Replayed,
}

impl SignatureRefusal {
    pub const ALL: [SignatureRefusal; 4] = [
        SignatureRefusal::UnknownApp,
        SignatureRefusal::Mismatch,
        SignatureRefusal::ClockSkew,
        SignatureRefusal::Replayed,
    ];

    /// Label for the refusal metric.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureRefusal::UnknownApp => "unknown_app",
            SignatureRefusal::Mismatch => "mismatch",
            SignatureRefusal::ClockSkew => "clock_skew",
            SignatureRefusal::Replayed => "replayed_signature",
        }
    }
}

/// The configured secrets: some valid for any app, some for one app only, and, for a product
/// whose callbacks a company signs with other secrets, that product's own set. Several can be
/// valid at once so that a secret can be rotated without refusing callbacks in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackSecrets {
    any_app: Vec<Secret>,
    per_app: HashMap<u64, Vec<Secret>>,
    /// Replaces the sets above for that product's callbacks.
    per_product: BTreeMap<Product, CallbackSecrets>,
}

/// A malformed `ZEGO_BRIDGE_CALLBACK_SECRETS` value. Messages never contain a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("entry {position} is empty (entries are separated by commas)")]
    EmptyEntry { position: usize },
    #[error("entry {position} has an empty secret after `=`")]
    EmptySecret { position: usize },
    // The text before `=` is not echoed: it may be part of a secret that holds a `=`.
    #[error("entry {position}: the text before `=` is not an AppID (an unsigned integer); a secret that holds `=` or `,` must be given in the JSON form")]
    BadAppId { position: usize },
    #[error("starts with a UTF-8 byte-order mark (an editor adds it; it is no part of a secret): save it without one")]
    ByteOrderMark,
    #[error("the JSON form must be an object whose keys are `*` (any app) or an AppID, with a secret or a list of secrets each (non-empty), or a product name (`zim`, `ai_agent`, …) with an object of the same form: {0}")]
    BadJson(String),
}

/// A key of the JSON form as an error may show it: `*`, or not at all. Not even an AppID: a
/// secret of digits written where a key goes must not reach a log.
fn shown_key(key: &str) -> &'static str {
    if key == "*" {
        "`*`"
    } else {
        "a key that is not shown"
    }
}

impl CallbackSecrets {
    /// Parses comma-separated entries, each `SECRET` (any app) or `APPID=SECRET` (that app); or,
    /// when the value starts with `{`, a JSON object from `*` (any app) or an AppID to a secret
    /// or a list of secrets, which can hold any character:
    /// `{"*": ["old", "new"], "4242": "a,b=c"}`.
    pub fn parse(value: &str) -> Result<Self, SecretsError> {
        // Read as it is, a BOM would make a JSON file one literal secret that never matches.
        if value.trim_start().starts_with('\u{feff}') {
            return Err(SecretsError::ByteOrderMark);
        }
        if value.trim_start().starts_with('{') {
            return Self::parse_json(value);
        }
        let mut secrets = CallbackSecrets::default();
        for (index, entry) in value.split(',').enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(SecretsError::EmptyEntry { position });
            }
            match entry.split_once('=') {
                Some((app_id, secret)) => {
                    let app_id_text = app_id.trim();
                    let app_id = app_id_text
                        .parse::<u64>()
                        .map_err(|_| SecretsError::BadAppId { position })?;
                    let secret = secret.trim();
                    if secret.is_empty() {
                        return Err(SecretsError::EmptySecret { position });
                    }
                    secrets
                        .per_app
                        .entry(app_id)
                        .or_default()
                        .push(Secret::new(secret));
                }
                None => secrets.any_app.push(Secret::new(entry)),
            }
        }
        Ok(secrets)
    }

    fn parse_json(value: &str) -> Result<Self, SecretsError> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Listed {
            One(String),
            Many(Vec<String>),
        }
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Listed(Listed),
            Product(BTreeMap<String, Listed>),
        }
        fn add(
            secrets: &mut CallbackSecrets,
            app: &str,
            listed: Listed,
        ) -> Result<(), SecretsError> {
            let listed = match listed {
                Listed::One(secret) => vec![secret],
                Listed::Many(list) => list,
            };
            if listed.is_empty() || listed.iter().any(String::is_empty) {
                return Err(SecretsError::BadJson(format!(
                    "an empty secret for {}",
                    shown_key(app)
                )));
            }
            let listed = listed.iter().map(|secret| Secret::new(secret));
            if app == "*" {
                secrets.any_app.extend(listed);
            } else {
                let app_id = app.parse::<u64>().map_err(|_| {
                    SecretsError::BadJson(
                        "a key is neither `*`, an AppID nor a product name (it is not shown: a \
                         secret written where a key goes would be)"
                            .to_owned(),
                    )
                })?;
                secrets.per_app.entry(app_id).or_default().extend(listed);
            }
            Ok(())
        }
        // serde_json's messages name positions and types, never the text of a value.
        let map: BTreeMap<String, Entry> = serde_json::from_str(value).map_err(|err| {
            SecretsError::BadJson(format!("line {}, column {}", err.line(), err.column()))
        })?;
        let mut secrets = CallbackSecrets::default();
        for (key, entry) in map {
            match entry {
                Entry::Listed(listed) => add(&mut secrets, &key, listed)?,
                Entry::Product(section) => {
                    let product = Product::from_name(&key).ok_or_else(|| {
                        SecretsError::BadJson(
                            "a key whose value is an object is not a product name (it is not \
                             shown: a secret written where a key goes would be)"
                                .to_owned(),
                        )
                    })?;
                    let mut own = CallbackSecrets::default();
                    for (app, listed) in section {
                        add(&mut own, &app, listed)?;
                    }
                    if own.is_empty() {
                        return Err(SecretsError::BadJson(format!("no secret for {key:?}")));
                    }
                    secrets.per_product.insert(product, own);
                }
            }
        }
        if secrets.is_empty() {
            return Err(SecretsError::BadJson("no secret".to_owned()));
        }
        Ok(secrets)
    }

    pub fn single(secret: Secret) -> Self {
        CallbackSecrets {
            any_app: vec![secret],
            ..CallbackSecrets::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.any_app.is_empty() && self.per_app.is_empty() && self.per_product.is_empty()
    }

    /// How many secrets are configured, for the startup log.
    pub fn count(&self) -> usize {
        self.any_app.len()
            + self.per_app.values().map(Vec::len).sum::<usize>()
            + self
                .per_product
                .values()
                .map(CallbackSecrets::count)
                .sum::<usize>()
    }

    /// The secrets that sign `product`'s callbacks: its own set when one is configured, else
    /// the common ones.
    pub fn for_product(&self, product: Product) -> &CallbackSecrets {
        self.per_product.get(&product).unwrap_or(self)
    }

    /// Checks `signature` against every secret valid for `app_id`, in constant time per secret.
    pub fn verify(
        &self,
        app_id: u64,
        timestamp: &str,
        nonce: &str,
        signature: &str,
    ) -> Result<(), SignatureRefusal> {
        let app_secrets = self.per_app.get(&app_id).map(Vec::as_slice).unwrap_or(&[]);
        if app_secrets.is_empty() && self.any_app.is_empty() {
            return Err(SignatureRefusal::UnknownApp);
        }
        let mut received = [0u8; 20];
        if hex::decode_to_slice(signature.trim(), &mut received).is_err() {
            return Err(SignatureRefusal::Mismatch);
        }
        // Check every candidate without stopping at the first match, so the time taken does not
        // reveal which secret matched.
        let matched = app_secrets
            .iter()
            .chain(&self.any_app)
            .fold(subtle::Choice::from(0), |matched, secret| {
                matched | digest(secret.expose(), timestamp, nonce).ct_eq(&received)
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(SignatureRefusal::Mismatch)
        }
    }
}

/// Rejects a callback whose `timestamp` (Unix seconds) is further than `max_skew_secs` from `now`.
/// A tolerance of 0 disables the check.
pub fn check_clock_skew(
    timestamp: i64,
    now: i64,
    max_skew_secs: u64,
) -> Result<(), SignatureRefusal> {
    if max_skew_secs == 0 || timestamp.abs_diff(now) <= max_skew_secs {
        Ok(())
    } else {
        Err(SignatureRefusal::ClockSkew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1_hex(input: &str) -> String {
        hex::encode(Sha1::digest(input.as_bytes()))
    }

    /// ZEGO's own example ("SignatureVerificationZH", doc-zh.zego.im article 19700): secret
    /// `secret`, timestamp `1470820198`, nonce `123412`.
    #[test]
    fn the_vendors_test_vector_holds() {
        assert_eq!(
            sign("secret", "1470820198", "123412"),
            "5bd59fd62953a8059fb7eaba95720f66d19e4517"
        );
    }

    /// However a secret is misplaced in the JSON form, the error never shows it; a file saved
    /// with a byte-order mark is refused, not read as one literal secret.
    #[test]
    fn errors_never_show_a_secret_and_a_byte_order_mark_is_refused() {
        let secret = "s3cr3t-Vv9-DoNotLog";
        for bad in [
            format!(r#"{{"{secret}": "x"}}"#),
            format!(r#"{{"{secret}": ["x", "y"]}}"#),
            format!(r#"{{"{secret}": {{"*": "x"}}}}"#),
            format!(r#"{{"{secret}": ""}}"#),
            format!(r#"{{"{secret}": []}}"#),
            format!(r#"{{"zim": {{"{secret}": "x"}}}}"#),
            format!(r#"{{"*": "{secret}", "{secret}": 1}}"#),
            r#"{"98765432109876": ""}"#.to_owned(),
        ] {
            assert!(!CallbackSecrets::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("98765432109876"));
            let err = CallbackSecrets::parse(&bad).unwrap_err().to_string();
            assert!(!err.contains(secret), "{bad}: {err}");
            assert!(!err.contains("DoNotLog"), "{bad}: {err}");
        }
        for with_bom in [
            "\u{feff}{\"*\": \"a\"}",
            "\u{feff}secret",
            " \u{feff}4242=x",
        ] {
            assert_eq!(
                CallbackSecrets::parse(with_bom),
                Err(SecretsError::ByteOrderMark),
                "{with_bom:?}"
            );
        }
    }

    /// The reply does not tell an app without a secret from a wrong signature.
    #[test]
    fn a_client_cannot_tell_which_apps_have_a_secret() {
        assert_eq!(
            SignatureRefusal::UnknownApp.to_string(),
            SignatureRefusal::Mismatch.to_string()
        );
        assert_ne!(
            SignatureRefusal::UnknownApp.reason(),
            SignatureRefusal::Mismatch.reason()
        );
    }

    #[test]
    fn signs_the_three_values_sorted_bytewise_and_joined() {
        // "1499676978" < "350176" < "secret" byte-wise.
        assert_eq!(
            sign("secret", "1499676978", "350176"),
            sha1_hex("1499676978350176secret")
        );
    }

    #[test]
    fn sorting_is_on_values_not_on_roles() {
        // The secret sorts first here, the nonce last.
        assert_eq!(sign("0abc", "1700000000", "9"), sha1_hex("0abc17000000009"));
        // Sorting is by bytes, not by number: "10" < "9".
        assert_eq!(sign("s", "9", "10"), sha1_hex("109s"));
        // Upper case sorts before lower case.
        assert_eq!(sign("abc", "ABC", "Abc"), sha1_hex("ABCAbcabc"));
        // A prefix sorts before the longer string.
        assert_eq!(sign("12", "123", "1"), sha1_hex("112123"));
    }

    #[test]
    fn a_known_vector() {
        // sha1("1234561470820198secret") computed independently with `sha1sum`: "123456" sorts first.
        assert_eq!(
            sign("secret", "1470820198", "123456"),
            "716245e09d45f6c01c46879de1509735fde1b1b7"
        );
    }

    #[test]
    fn verify_accepts_any_valid_secret_and_refuses_others() {
        let secrets = CallbackSecrets::parse("old, new ,42=app42").unwrap();
        assert_eq!(secrets.count(), 3);
        for secret in ["old", "new"] {
            let signature = sign(secret, "1", "2");
            assert_eq!(secrets.verify(7, "1", "2", &signature), Ok(()));
        }
        let app42 = sign("app42", "1", "2");
        assert_eq!(secrets.verify(42, "1", "2", &app42), Ok(()));
        assert_eq!(
            secrets.verify(7, "1", "2", &app42),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            secrets.verify(7, "1", "3", &sign("old", "1", "2")),
            Err(SignatureRefusal::Mismatch)
        );
    }

    #[test]
    fn uppercase_hex_is_the_same_signature_and_garbage_is_a_mismatch() {
        let secrets = CallbackSecrets::parse("s").unwrap();
        let signature = sign("s", "1", "2").to_uppercase();
        assert_eq!(secrets.verify(1, "1", "2", &signature), Ok(()));
        assert_eq!(
            secrets.verify(1, "1", "2", "signature"),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            secrets.verify(1, "1", "2", ""),
            Err(SignatureRefusal::Mismatch)
        );
    }

    #[test]
    fn app_specific_secrets_refuse_other_apps() {
        let secrets = CallbackSecrets::parse("42=a").unwrap();
        let signature = sign("a", "1", "2");
        assert_eq!(
            secrets.verify(43, "1", "2", &signature),
            Err(SignatureRefusal::UnknownApp)
        );
    }

    #[test]
    fn the_json_form_holds_any_character_in_a_secret() {
        let secrets =
            CallbackSecrets::parse(r#" {"*": ["a,b=c", " spaced "], "42": "x\"y,z"} "#).unwrap();
        assert_eq!(secrets.count(), 3);
        for secret in ["a,b=c", " spaced "] {
            assert_eq!(secrets.verify(7, "1", "2", &sign(secret, "1", "2")), Ok(()));
        }
        assert_eq!(
            secrets.verify(42, "1", "2", &sign("x\"y,z", "1", "2")),
            Ok(())
        );
        assert_eq!(
            secrets.verify(7, "1", "2", &sign("x\"y,z", "1", "2")),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(
            secrets.verify(7, "1", "2", &sign("a", "1", "2")),
            Err(SignatureRefusal::Mismatch),
            "no part of a secret is a secret"
        );
    }

    #[test]
    fn a_product_can_have_secrets_of_its_own() {
        let secrets = CallbackSecrets::parse(
            r#"{"*": "rtc", "zim": {"*": ["server", "callback"]}, "asr": {"42": "a"}}"#,
        )
        .unwrap();
        assert_eq!(secrets.count(), 4);
        let check = |product, app, secret| {
            secrets
                .for_product(product)
                .verify(app, "1", "2", &sign(secret, "1", "2"))
        };
        assert_eq!(check(Product::Rtc, 7, "rtc"), Ok(()));
        assert_eq!(
            check(Product::AiAgent, 7, "rtc"),
            Ok(()),
            "no set of its own"
        );
        assert_eq!(check(Product::Zim, 7, "server"), Ok(()));
        assert_eq!(check(Product::Zim, 7, "callback"), Ok(()));
        assert_eq!(
            check(Product::Zim, 7, "rtc"),
            Err(SignatureRefusal::Mismatch),
            "a product's own set replaces the common one"
        );
        assert_eq!(
            check(Product::Rtc, 7, "server"),
            Err(SignatureRefusal::Mismatch)
        );
        assert_eq!(check(Product::Asr, 42, "a"), Ok(()));
        assert_eq!(
            check(Product::Asr, 7, "a"),
            Err(SignatureRefusal::UnknownApp)
        );
        for bad in [
            r#"{"chat": {"*": "s3cr3t"}}"#,
            r#"{"zim": {}}"#,
            r#"{"zim": {"x": "s3cr3t"}}"#,
        ] {
            let err = CallbackSecrets::parse(bad).unwrap_err();
            assert!(matches!(err, SecretsError::BadJson(_)), "{bad}: {err:?}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn malformed_secret_lists_are_explained_without_the_secret() {
        assert_eq!(
            CallbackSecrets::parse("a,,b").unwrap_err(),
            SecretsError::EmptyEntry { position: 2 }
        );
        assert_eq!(
            CallbackSecrets::parse("42=").unwrap_err(),
            SecretsError::EmptySecret { position: 1 }
        );
        let err = CallbackSecrets::parse("app=topsecret").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
        // A secret that holds `=`: neither half may be echoed.
        let err = CallbackSecrets::parse("s3cr3tHalf=otherHalf").unwrap_err();
        assert_eq!(err, SecretsError::BadAppId { position: 1 });
        assert!(!err.to_string().contains("s3cr3tHalf"), "{err}");
        for bad in [
            r#"{"*": ""}"#,
            r#"{"x": "s3cr3t"}"#,
            r#"{"*": []}"#,
            r#"{"*": "s3cr3t""#,
            "{}",
        ] {
            let err = CallbackSecrets::parse(bad).unwrap_err();
            assert!(matches!(err, SecretsError::BadJson(_)), "{bad}: {err:?}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
        assert!(
            !format!("{:?}", CallbackSecrets::parse("topsecret").unwrap()).contains("topsecret")
        );
    }

    #[test]
    fn clock_skew() {
        assert_eq!(check_clock_skew(1000, 1300, 300), Ok(()));
        assert_eq!(
            check_clock_skew(1301, 1000, 300),
            Err(SignatureRefusal::ClockSkew)
        );
        assert_eq!(check_clock_skew(0, i64::MAX, 0), Ok(()));
        assert_eq!(
            check_clock_skew(i64::MIN, i64::MAX, 300),
            Err(SignatureRefusal::ClockSkew)
        );
    }
}
