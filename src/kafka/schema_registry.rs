//! A Confluent-compatible schema registry (Confluent Schema Registry, Apicurio Registry's
//! `/apis/ccompat/v7`, Karapace, Redpanda…): each event type's JSON Schema is registered under
//! the subject of its topic (TopicNameStrategy: `{topic}-value`), and every record's value is
//! written in the Confluent wire format (byte 0, the schema id in 4 bytes big-endian, the JSON),
//! which Confluent's and Apicurio's JSON Schema deserializers read.
//!
//! Registration happens at start, before anything is published, rather than by a separate
//! command: a record cannot be framed without its schema's id, and a bridge that registers its
//! own schemas cannot publish with ids of another version's. Each schema's compatibility with
//! its subject's versions is checked as it is registered, so a new version whose schemas the
//! registry refuses stops at its first pod, with the subject and the registry's reasons, while
//! the pods of the old version keep serving.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tracing::{debug, info, warn};

use super::TopicMap;
use crate::event::catalog::{self, EventType};
use crate::zego::Secret;

/// The first byte of a framed value: the wire format's version.
const MAGIC_BYTE: u8 = 0;
/// The magic byte and the schema id.
const HEADER_LEN: usize = 5;
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pauses between tries while the registry cannot be reached or fails (5xx, 429): about half a
/// minute in all, time for a registry that starts beside the bridge to come up.
const RETRY_PAUSES: [Duration; 6] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];
/// Registrations in flight at once: a remote registry at 50 ms takes the catalog in seconds.
const CONCURRENT_REGISTRATIONS: usize = 8;

/// Where the registry is and how to talk to it (`ZEGO_BRIDGE_SCHEMA_REGISTRY_*`).
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// The root of the Confluent-compatible API, without a trailing `/`.
    pub url: String,
    /// HTTP basic credentials.
    pub credentials: Option<(String, Secret)>,
    /// PEM certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "the schema registry at {url} cannot be reached: {reason} (check \
         ZEGO_BRIDGE_SCHEMA_REGISTRY_URL; nothing is published unframed)"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the schema registry at {url} presents a certificate the bridge does not trust: {reason} \
         (give its CA in ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE, and check that the URL's host is \
         one the certificate names)"
    )]
    UntrustedCertificate { url: String, reason: String },
    #[error(
        "the schema registry refuses the bridge's credentials (HTTP {status}): check \
         ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME and ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD(_FILE), \
         and that they may register schemas"
    )]
    Unauthorized { status: u16 },
    #[error(
        "the schema registry refuses the schema of {kind} under subject {subject} as incompatible \
         with the versions it holds: {message} (docs/events.md, \"How schemas evolve\")"
    )]
    Incompatible {
        kind: &'static str,
        subject: String,
        message: String,
    },
    #[error(
        "the schema registry answers HTTP {status} to the registration of {kind} under subject \
         {subject}: {message}{hint}"
    )]
    Refused {
        kind: &'static str,
        subject: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
}

/// The registry's id of each event type's schema, in catalog order; `None` for the types of
/// products the bridge does not serve, whose schemas were not registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIds(Vec<Option<u32>>);

impl SchemaIds {
    pub fn of(&self, kind: &EventType) -> Option<u32> {
        self.0[catalog::index_of(kind)]
    }

    /// The id for a record kept by the spool or the dead-letter file, from its `ce_type`
    /// header (`com.zegocloud.room.closed`).
    pub fn of_record(&self, headers: &[(String, String)]) -> Option<u32> {
        kind_of_headers(
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        )
        .and_then(|kind| self.of(kind))
    }
}

/// The event type a record's `ce_type` header names.
pub fn kind_of_headers<'a>(
    mut headers: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<&'static EventType> {
    headers
        .find(|(name, _)| *name == "ce_type")
        .and_then(|(_, value)| value.strip_prefix("com.zegocloud."))
        .and_then(catalog::by_name)
}

/// A JSON value in the wire format of the schema `id`.
pub fn framed(id: u32, json: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(HEADER_LEN + json.len());
    value.push(MAGIC_BYTE);
    value.extend_from_slice(&id.to_be_bytes());
    value.extend_from_slice(json);
    value
}

/// The JSON of a value, framed or not: the bridge's JSON always starts with `{`, never with the
/// magic byte.
pub fn json_of(value: &[u8]) -> &[u8] {
    match value.first() {
        Some(&MAGIC_BYTE) if value.len() >= HEADER_LEN => &value[HEADER_LEN..],
        _ => value,
    }
}

/// TopicNameStrategy: the subject of a topic's values.
pub fn subject_of(topic: &str) -> String {
    format!("{topic}-value")
}

/// Registers the schema of every type the bridge serves under its topic's subject, and returns
/// their ids. The configuration has refused two types on one topic: a subject holds the
/// versions of one schema.
pub async fn register_topics(
    settings: &RegistrySettings,
    topics: &TopicMap,
) -> Result<SchemaIds, RegistryError> {
    if settings.credentials.is_some() && settings.url.starts_with("http://") {
        warn!(
            registry = settings.url,
            "the schema registry's password goes over plain HTTP: use an https:// URL"
        );
    }
    let client = RegistryClient::new(settings.clone())?;
    let registered: Vec<(&'static EventType, u32)> = stream::iter(topics.iter())
        .map(|(kind, topic)| {
            let client = &client;
            async move {
                let subject = subject_of(topic);
                let id = client.register(&subject, kind).await?;
                debug!(subject, schema_id = id, "schema registered");
                Ok::<_, RegistryError>((kind, id))
            }
        })
        .buffer_unordered(CONCURRENT_REGISTRATIONS)
        .try_collect()
        .await?;
    let mut ids = vec![None; catalog::ALL.len()];
    for (kind, id) in &registered {
        ids[catalog::index_of(kind)] = Some(*id);
    }
    info!(
        registry = settings.url,
        subjects = registered.len(),
        "event schemas registered; record values are in the Confluent wire format"
    );
    Ok(SchemaIds(ids))
}

/// A client of the registry's Confluent-compatible API.
pub struct RegistryClient {
    http: reqwest::Client,
    settings: RegistrySettings,
}

impl RegistryClient {
    pub fn new(settings: RegistrySettings) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = &settings.ca_file {
            let certificates = read_ca_file(path).map_err(|reason| RegistryError::CaFile {
                path: path.clone(),
                reason,
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|err| RegistryError::Unreachable {
            url: settings.url.clone(),
            reason: format!("cannot build an HTTP client: {err}"),
        })?;
        Ok(RegistryClient { http, settings })
    }

    /// Registers `kind`'s schema under `subject` and returns its id (the id the registry
    /// already has when the schema is there). Compatibility with the subject's latest version
    /// is asked first: it names every reason a schema is refused, and holds registries to it
    /// that skip the check when the same schema is known under another subject.
    pub async fn register(
        &self,
        subject: &str,
        kind: &'static EventType,
    ) -> Result<u32, RegistryError> {
        let body = serde_json::json!({
            "schemaType": "JSON",
            "schema": serde_json::to_string(&crate::event::schema::schema_for(kind))
                .expect("a schema serializes"),
        })
        .to_string();
        let subject_path =
            percent_encoding::utf8_percent_encode(subject, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let refused = |status: u16, message: String| RegistryError::Refused {
            kind: kind.name,
            subject: subject.to_owned(),
            status,
            message,
            hint: if status == 404 { URL_HINT } else { "" },
        };
        let incompatible = |message: String| RegistryError::Incompatible {
            kind: kind.name,
            subject: subject.to_owned(),
            message,
        };

        let (status, text) = self
            .post(
                &format!("/compatibility/subjects/{subject_path}/versions/latest?verbose=true"),
                &body,
            )
            .await?;
        match status {
            200..=299 => {
                let verdict: Compatibility = serde_json::from_str(&text).map_err(|_| {
                    refused(
                        status,
                        format!("an unreadable answer: {}", registry_message(&text)),
                    )
                })?;
                if !verdict.is_compatible {
                    return Err(incompatible(if verdict.messages.is_empty() {
                        "no reason given".to_owned()
                    } else {
                        verdict.messages.join("; ")
                    }));
                }
            }
            // No version yet (error codes 40401 and 40402): nothing to be compatible with. A
            // wrong URL is told apart by the registration's own 404 below.
            404 => {}
            401 | 403 => return Err(RegistryError::Unauthorized { status }),
            _ => return Err(refused(status, registry_message(&text))),
        }

        let (status, text) = self
            .post(&format!("/subjects/{subject_path}/versions"), &body)
            .await?;
        match status {
            200..=299 => serde_json::from_str::<Registered>(&text)
                .map(|registered| registered.id)
                .map_err(|_| {
                    refused(
                        status,
                        format!("an answer without a schema id: {}", registry_message(&text)),
                    )
                }),
            401 | 403 => Err(RegistryError::Unauthorized { status }),
            409 => Err(incompatible(registry_message(&text))),
            _ => Err(refused(status, registry_message(&text))),
        }
    }

    /// POSTs `body` to `path` and returns the registry's answer, trying again for about half a
    /// minute while it cannot be reached or fails (5xx, 408, 429).
    async fn post(&self, path: &str, body: &str) -> Result<(u16, String), RegistryError> {
        let mut pauses = RETRY_PAUSES.iter();
        loop {
            let mut request = self
                .http
                .post(format!("{}{path}", self.settings.url))
                .header(reqwest::header::CONTENT_TYPE, MEDIA_TYPE)
                .header(reqwest::header::ACCEPT, MEDIA_TYPE)
                .body(body.to_owned());
            if let Some((username, password)) = &self.settings.credentials {
                request = request.basic_auth(username, Some(password.expose()));
            }
            let reason = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    if !matches!(status, 408 | 429 | 500..=599) {
                        return Ok((status, text));
                    }
                    format!("HTTP {status}: {}", registry_message(&text))
                }
                Err(err) => {
                    let reason = error_chain(&err);
                    // Waiting does not make a certificate trusted: say so at once.
                    if is_untrusted_certificate(&reason) {
                        return Err(RegistryError::UntrustedCertificate {
                            url: self.settings.url.clone(),
                            reason,
                        });
                    }
                    reason
                }
            };
            let Some(pause) = pauses.next() else {
                return Err(RegistryError::Unreachable {
                    url: self.settings.url.clone(),
                    reason,
                });
            };
            warn!(path, %reason, "the schema registry cannot answer yet; trying again");
            tokio::time::sleep(*pause).await;
        }
    }
}

/// The certificates of a PEM file, at least one; the configuration checks the file with it.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|err| err.to_string())?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| err.to_string())?;
    if certificates.is_empty() {
        return Err("it holds no PEM certificate".to_owned());
    }
    Ok(certificates)
}

const URL_HINT: &str = " (is ZEGO_BRIDGE_SCHEMA_REGISTRY_URL the root of a Confluent-compatible \
                        API? Apicurio Registry serves it under /apis/ccompat/v7)";

#[derive(serde::Deserialize)]
struct Registered {
    id: u32,
}

#[derive(serde::Deserialize)]
struct Compatibility {
    is_compatible: bool,
    #[serde(default)]
    messages: Vec<String>,
}

/// The `message` of a registry's error body, or the body itself, cut short.
fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    let message = serde_json::from_str::<ErrorBody>(body)
        .map(|error| error.message)
        .unwrap_or_else(|_| body.trim().to_owned());
    match message.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// Whether a request failed on the registry's certificate (untrusted issuer, expired, another
/// host's). OpenSSL, under native-tls, reports it only in its message, which has said
/// "certificate verify failed" for every such reason since its first versions.
fn is_untrusted_certificate(reason: &str) -> bool {
    reason.contains("certificate verify failed")
}

/// An error with its causes: reqwest's own message alone says little ("error sending request").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Layers often repeat their cause's message in their own (OpenSSL's, say).
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_puts_the_magic_byte_and_the_id_before_the_json() {
        let value = framed(0x0102_0304, br#"{"a":1}"#);
        assert_eq!(&value[..5], &[0, 1, 2, 3, 4]);
        assert_eq!(json_of(&value), br#"{"a":1}"#);
        assert_eq!(json_of(br#"{"a":1}"#), br#"{"a":1}"#);
        assert_eq!(json_of(b""), b"");
    }

    #[test]
    fn a_records_type_header_names_its_schema() {
        let mut ids = vec![None; catalog::ALL.len()];
        ids[catalog::index_of(&catalog::ROOM_CLOSED)] = Some(7);
        let ids = SchemaIds(ids);
        let headers = |ce_type: &str| vec![("ce_type".to_owned(), ce_type.to_owned())];
        assert_eq!(
            ids.of_record(&headers("com.zegocloud.room.closed")),
            Some(7)
        );
        assert_eq!(ids.of_record(&headers("com.zegocloud.room.created")), None);
        assert_eq!(ids.of_record(&headers("room.closed")), None);
        assert_eq!(ids.of_record(&[]), None);
    }

    #[test]
    fn registry_messages_are_read_from_error_bodies_and_cut_short() {
        assert_eq!(
            registry_message(r#"{"error_code":409,"message":"Incompatible"}"#),
            "Incompatible"
        );
        assert_eq!(registry_message(" plain text "), "plain text");
        assert_eq!(registry_message(&"é".repeat(600)).chars().count(), 501);
    }
}
