//! `zego-kafka-bridge send`: signs callbacks the way ZEGO does and posts them, optionally with
//! ZEGO's retry schedule. For trying the bridge out and for tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json};

use crate::samples;
use crate::zego::{self, sniff, Encoding, Product, RawCallback, TimestampUnit};

/// ZEGO's retry delays after a failed delivery (the callback is dropped after the last).
pub const ZEGO_RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(32),
];

/// A callback ready to post: body and Content-Type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCallback {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// What to change in a callback before signing it.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    pub secret: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub app_id: Option<u64>,
    /// Send as `application/x-www-form-urlencoded` when the callback has no nested objects.
    pub as_form: bool,
}

impl Signing<'_> {
    pub fn now(secret: &str) -> Signing<'_> {
        Signing {
            secret,
            timestamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |now| now.as_secs() as i64),
            nonce: "",
            app_id: None,
            as_form: false,
        }
    }
}

/// The product a callback body comes from (RTC when it does not say).
pub fn product_of(body: &str) -> Product {
    RawCallback::decode(body.as_bytes(), sniff(body.as_bytes()))
        .ok()
        .and_then(|callback| zego::classify(&callback.root))
        .unwrap_or(Product::Rtc)
}

/// Whether a callback's `timestamp` is to be stamped in milliseconds: always for a product that
/// sends milliseconds, and for one whose pages disagree when the body already holds a value in
/// milliseconds.
fn stamps_milliseconds(body: &str) -> bool {
    match product_of(body).timestamp_unit() {
        TimestampUnit::Milliseconds => true,
        TimestampUnit::Seconds => false,
        TimestampUnit::Either => RawCallback::decode(body.as_bytes(), sniff(body.as_bytes()))
            .ok()
            .and_then(|callback| {
                let entry = callback.root.get(zego::TIMESTAMP_KEYS[0])?;
                let scalar = entry.node.scalar().ok()??;
                scalar.text.trim().parse::<i64>().ok()
            })
            .is_some_and(|value| value >= TimestampUnit::MILLISECONDS_FROM),
    }
}

/// Stamps `timestamp`, `nonce`, `signature` (and the AppID if asked) into a JSON or form
/// callback, keeping each key's casing and each value's JSON type, and the timestamp in the
/// unit its product sends (see [`stamps_milliseconds`]).
pub fn sign_callback(body: &str, signing: &Signing<'_>) -> Result<SignedCallback, String> {
    let stamp = if stamps_milliseconds(body) {
        signing.timestamp.saturating_mul(1000)
    } else {
        signing.timestamp
    };
    let timestamp = stamp.to_string();
    let signature = zego::sign(signing.secret, &timestamp, signing.nonce);
    match sniff(body.as_bytes()) {
        Encoding::Json => {
            let mut map: Map<String, Json> =
                serde_json::from_str(body).map_err(|err| format!("not a JSON object: {err}"))?;
            let numeric_timestamp =
                find_key(&map, zego::TIMESTAMP_KEYS).is_some_and(|key| map[&key].is_number());
            set(
                &mut map,
                zego::TIMESTAMP_KEYS,
                if numeric_timestamp {
                    Json::from(stamp)
                } else {
                    Json::from(timestamp.clone())
                },
            );
            set(&mut map, zego::NONCE_KEYS, Json::from(signing.nonce));
            set(&mut map, zego::SIGNATURE_KEYS, Json::from(signature));
            if let Some(app_id) = signing.app_id {
                let numeric =
                    find_key(&map, zego::APP_ID_KEYS).is_some_and(|key| map[&key].is_number());
                set(
                    &mut map,
                    zego::APP_ID_KEYS,
                    if numeric {
                        Json::from(app_id)
                    } else {
                        Json::from(app_id.to_string())
                    },
                );
            }
            if signing.as_form {
                if let Some(form) = json_as_form(&map) {
                    return Ok(SignedCallback {
                        body: form.into_bytes(),
                        content_type: "application/x-www-form-urlencoded",
                    });
                }
            }
            Ok(SignedCallback {
                body: serde_json::to_vec(&map).expect("a map serializes"),
                content_type: "application/json",
            })
        }
        Encoding::Form => {
            let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body.trim().as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
            let mut replace = |keys: &[&str], value: String| match pairs
                .iter_mut()
                .find(|(key, _)| keys.iter().any(|k| key.eq_ignore_ascii_case(k)))
            {
                Some(pair) => pair.1 = value,
                None => pairs.push((keys[0].to_owned(), value)),
            };
            replace(zego::TIMESTAMP_KEYS, timestamp);
            replace(zego::NONCE_KEYS, signing.nonce.to_owned());
            replace(zego::SIGNATURE_KEYS, signature);
            if let Some(app_id) = signing.app_id {
                replace(zego::APP_ID_KEYS, app_id.to_string());
            }
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            Ok(SignedCallback {
                body: body.into_bytes(),
                content_type: "application/x-www-form-urlencoded",
            })
        }
    }
}

fn find_key(map: &Map<String, Json>, keys: &[&str]) -> Option<String> {
    map.keys()
        .find(|key| keys.iter().any(|wanted| key.eq_ignore_ascii_case(wanted)))
        .cloned()
}

fn set(map: &mut Map<String, Json>, keys: &[&str], value: Json) {
    let key = find_key(map, keys).unwrap_or_else(|| keys[0].to_owned());
    map.insert(key, value);
}

/// A form body for a callback without nested objects; `None` when it has some.
fn json_as_form(map: &Map<String, Json>) -> Option<String> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in map {
        match value {
            Json::String(text) => {
                form.append_pair(key, text);
            }
            Json::Number(number) => {
                form.append_pair(key, &number.to_string());
            }
            Json::Bool(flag) => {
                form.append_pair(key, if *flag { "1" } else { "0" });
            }
            Json::Null => {}
            Json::Array(items) => {
                for item in items {
                    form.append_pair(key, item.as_str()?);
                }
            }
            Json::Object(_) => return None,
        }
    }
    Some(form.finish())
}

/// A callback to send: a name for the output, its unsigned body, and the product whose path
/// it goes to.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub name: String,
    pub body: String,
    pub product: Product,
}

impl Outgoing {
    /// A callback read from a file: its body says which product it is of.
    pub fn from_body(name: String, body: String) -> Self {
        let product = product_of(&body);
        Outgoing {
            name,
            body,
            product,
        }
    }
}

/// Where a callback of `product` goes, given where RTC's go (`…/v1/callbacks`): its
/// product's path below it.
pub fn url_for(rtc_url: &str, product: Product) -> String {
    match product.path_segment() {
        None => rtc_url.to_owned(),
        Some(segment) => format!("{}/{segment}", rtc_url.trim_end_matches('/')),
    }
}

/// The bundled samples whose event (or file) matches `filter`, or all of them.
pub fn bundled(filter: Option<&str>) -> Result<Vec<Outgoing>, String> {
    let chosen: Vec<Outgoing> = samples::callbacks()
        .filter(|sample| {
            filter.is_none_or(|wanted| {
                sample.event() == wanted || sample.file == wanted || sample.name() == wanted
            })
        })
        .map(|sample| Outgoing {
            name: sample.file.to_owned(),
            body: sample.body.to_owned(),
            product: sample.product,
        })
        .collect();
    if chosen.is_empty() {
        let mut names: Vec<&str> = samples::callbacks().map(|sample| sample.event()).collect();
        names.sort_unstable();
        names.dedup();
        return Err(format!(
            "no bundled sample named {:?}; choose one of: {}",
            filter.unwrap_or_default(),
            names.join(", ")
        ));
    }
    Ok(chosen)
}

/// The outcome of posting one callback (after retries, if any).
#[derive(Debug)]
pub struct Delivery {
    pub status: Option<u16>,
    pub body: String,
    pub attempts: usize,
}

impl Delivery {
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Waits up to `wait` for something to accept a TCP connection where `url` points, saying once
/// that it waits. A newcomer runs `send` while the bridge in the other terminal is still starting:
/// without this, every sample failed at once with "no answer".
pub async fn wait_for_listener(url: &str, wait: Duration) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("not a URL: {url}: {err}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("no host in {url}"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("no port in {url}"))?;
    let address = format!("{host}:{port}");
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        // Bounded: a host that drops packets would hold one attempt for two minutes.
        let attempt = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect((host.as_str(), port)),
        );
        if matches!(attempt.await, Ok(Ok(_))) {
            return Ok(());
        }
        if started.elapsed() >= wait {
            return Err(format!(
                "nothing listens on {address} after {} s: start the bridge first (`cargo run \
                 --release`, which listens on 127.0.0.1:8080), or point --url at it",
                wait.as_secs()
            ));
        }
        if !said {
            eprintln!(
                "waiting up to {} s for the bridge to listen on {address}…",
                wait.as_secs()
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts one signed callback, retrying a failure after each of `delays` (pass
/// [`ZEGO_RETRY_DELAYS`] to behave as ZEGO does) with the same body, nonce and signature.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    callback: &SignedCallback,
    delays: &[Duration],
    mut on_retry: impl FnMut(&Delivery, Duration),
) -> Delivery {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, callback.content_type)
            .body(callback.body.clone())
            .send()
            .await;
        let delivery = match result {
            Ok(response) => Delivery {
                status: Some(response.status().as_u16()),
                body: response.text().await.unwrap_or_default(),
                attempts,
            },
            Err(err) => Delivery {
                status: None,
                body: err.to_string(),
                attempts,
            },
        };
        match delays.get(attempts - 1) {
            Some(delay) if !delivery.succeeded() => {
                on_retry(&delivery, *delay);
                tokio::time::sleep(*delay).await;
            }
            _ => return delivery,
        }
    }
}

/// A fresh random nonce, as ZEGO sends them (decimal, up to 19 digits).
pub fn random_nonce() -> String {
    (rand::random::<u64>() >> 1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zego::CommonFields;

    fn verify(signed: &SignedCallback, secret: &str) -> u64 {
        let encoding = if signed.content_type == "application/json" {
            Encoding::Json
        } else {
            Encoding::Form
        };
        let callback = RawCallback::decode(&signed.body, encoding).unwrap();
        let product = zego::classify(&callback.root).unwrap_or(Product::Rtc);
        let common = CommonFields::read_for(&callback.root, product).unwrap();
        common
            .verify(&zego::CallbackSecrets::parse(secret).unwrap())
            .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            (common.sent_at_secs() - now).abs() < 60,
            "the timestamp is stamped in the unit of its product"
        );
        common.app_id
    }

    #[test]
    fn every_bundled_sample_signs_and_verifies_as_json_and_form() {
        for outgoing in bundled(None).unwrap() {
            for as_form in [false, true] {
                let signing = Signing {
                    nonce: "123",
                    app_id: Some(77),
                    as_form,
                    ..Signing::now("k")
                };
                let signed = sign_callback(&outgoing.body, &signing).unwrap();
                assert_eq!(verify(&signed, "k"), 77, "{}", outgoing.name);
            }
        }
    }

    #[test]
    fn numeric_timestamps_stay_numeric_and_key_case_is_kept() {
        let signing = Signing {
            nonce: "9",
            timestamp: 1700000000,
            ..Signing::now("k")
        };
        let signed = sign_callback(
            r#"{"Event":"x","AppId":1,"Timestamp":1,"Nonce":"a","Signature":"b"}"#,
            &signing,
        )
        .unwrap();
        let text = String::from_utf8(signed.body).unwrap();
        assert!(text.contains(r#""Timestamp":1700000000"#), "{text}");
        assert!(text.contains(r#""Nonce":"9""#), "{text}");
        assert!(!text.contains(r#""timestamp""#), "{text}");
    }

    #[test]
    fn unknown_sample_names_list_the_choices() {
        let err = bundled(Some("nope")).unwrap_err();
        assert!(err.contains("room_create"), "{err}");
        assert_eq!(bundled(Some("room_close")).unwrap().len(), 2);
    }
}
