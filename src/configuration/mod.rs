//! Settings, read from `ZEGO_BRIDGE_*` environment variables and checked before anything starts.
//! Every error names the variable to fix.

use std::collections::HashMap;
use std::net::SocketAddr;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

mod effective;
mod table;

pub use table::{
    help_text, reference_tables, EffectiveSetting, Kind, Origin, Section, Setting, REDACTED,
    SETTINGS,
};

use crate::event::catalog;
use crate::kafka::{LibrdkafkaProperties, RegistrySettings, TopicError, TopicMap};
use crate::zego::zim::BeforeSendVerdict;
use crate::zego::{CallbackSecrets, ProductSet, Secret};
use table::Env;

pub use effective::render as render_effective;

pub const PREFIX: &str = "ZEGO_BRIDGE_";
const LIBRDKAFKA_PREFIX: &str = "ZEGO_BRIDGE_LIBRDKAFKA_";
const TOPIC_PREFIX_VARIABLE: &str = "ZEGO_BRIDGE_TOPIC_PREFIX";
const PRODUCTS_VARIABLE: &str = "ZEGO_BRIDGE_PRODUCTS";
const TOPIC_OVERRIDE_PREFIX: &str = "ZEGO_BRIDGE_TOPIC_";
/// Variables a test harness may set in the same environment; the service ignores them.
const IGNORED_PREFIX: &str = "ZEGO_BRIDGE_TEST_";

/// The secret used when no broker and no secret are configured: the first-run demo on the
/// embedded cluster. `zego-kafka-bridge send` signs with it by default.
pub const DEMO_SECRET: &str = "zego-kafka-bridge-demo-secret";

/// librdkafka properties the bridge sets itself and that must not be overridden.
const RESERVED_LIBRDKAFKA: &[(&str, &str)] = &[
    ("bootstrap.servers", "set ZEGO_BRIDGE_KAFKA_BROKERS instead"),
    (
        "metadata.broker.list",
        "set ZEGO_BRIDGE_KAFKA_BROKERS instead",
    ),
    (
        "delivery.report.only.error",
        "the bridge counts every delivery, so it needs every report",
    ),
    (
        "test.mock.num.brokers",
        "leave ZEGO_BRIDGE_KAFKA_BROKERS unset to use the embedded cluster",
    ),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTarget {
    /// A real cluster.
    Brokers(String),
    /// librdkafka's in-process mock cluster: nothing is persisted.
    Embedded,
}

/// When a callback is answered 200, with the settings that only that mode has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckMode {
    /// Once the event is in the producer's in-memory queue.
    Queued,
    /// Once Kafka acknowledged it (acks=all), within `timeout`.
    Delivered { timeout: Duration },
    /// Once it is appended to the local write-ahead spool and fsync'd.
    Spooled(SpoolSettings),
}

/// The write-ahead spool of ack mode `spooled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// How long the spool may fail to write before liveness fails (and Kubernetes restarts
    /// the pod); it recovers by itself before that if the disk does.
    pub liveness_grace: Duration,
}

impl AckMode {
    /// The name `ZEGO_BRIDGE_ACK_MODE` takes.
    pub fn as_str(&self) -> &'static str {
        match self {
            AckMode::Queued => "queued",
            AckMode::Delivered { .. } => "delivered",
            AckMode::Spooled(_) => "spooled",
        }
    }

    /// Producer properties this mode needs unless the user set them: with a request waiting for
    /// its batch, a short linger; with a spool holding every event until Kafka takes it, retries
    /// without end rather than a give-up after a timeout.
    pub fn producer_defaults(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            AckMode::Queued => &[],
            AckMode::Delivered { .. } => &[(
                "linger.ms",
                crate::kafka::ProducerDefaults::DELIVERED_LINGER_MS,
            )],
            AckMode::Spooled(_) => &[("message.timeout.ms", "0")],
        }
    }
}

/// Limits that keep slow or hostile clients from exhausting the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time allowed for a request's headers, and again for its body.
    pub request_timeout: Duration,
    pub keep_alive: Duration,
    /// Open connections per worker; past it, new ones wait in the accept backlog.
    pub max_connections_per_worker: usize,
    /// Bytes of request bodies held in memory at once, across all connections; past it, 503.
    pub max_buffered_body_bytes: usize,
    /// Bytes of unfinished request heads, beyond each head's allowance, across all
    /// connections; past it, 503 and the connection closed.
    pub max_buffered_head_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub kafka: KafkaTarget,
    pub secrets: CallbackSecrets,
    /// Where the secrets were read from, to read them again when it changes.
    pub secrets_file: Option<PathBuf>,
    pub max_clock_skew_secs: u64,
    /// The answer to ZIM's `before_send_msg`.
    pub zim_verdict: BeforeSendVerdict,
    pub max_body_bytes: usize,
    /// The topic of each type, of the products served.
    pub topics: TopicMap,
    /// The products whose callbacks are taken (`ZEGO_BRIDGE_PRODUCTS`).
    pub products: ProductSet,
    /// `ZEGO_BRIDGE_LIBRDKAFKA_*`, as librdkafka property names.
    pub librdkafka: LibrdkafkaProperties,
    /// `ZEGO_BRIDGE_SCHEMA_REGISTRY_*`; `None`: values are plain JSON.
    pub schema_registry: Option<RegistrySettings>,
    pub shutdown_timeout: Duration,
    pub shutdown_report_wait: Duration,
    /// Where the exit summary goes (`ZEGO_BRIDGE_TERMINATION_MESSAGE_PATH`).
    pub termination_message_path: PathBuf,
    pub retry_after_secs: u64,
    pub http_workers: usize,
    pub http_limits: HttpLimits,
    pub ack_mode: AckMode,
    /// Refuse callbacks once no broker has been reachable for this long.
    pub unavailable_after: Duration,
    pub dead_letter_path: PathBuf,
    /// How often dead letters are sent again; `None`: never.
    pub dead_letter_retry_interval: Option<Duration>,
    /// Recent event ids and signatures remembered for deduplication and replay defence.
    pub dedup_capacity: usize,
    /// How often Kafka is asked for metadata (reachability, missing topics).
    pub probe_interval: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Log every published event (on by default only with the embedded cluster).
    pub log_events: bool,
    /// One log line per callback request.
    pub access_log: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Whether callbacks are verified with the first-run demo secret (and nothing else), which
    /// the start warns about.
    pub fn uses_demo_secret(&self) -> bool {
        self.secrets == CallbackSecrets::single(Secret::new(DEMO_SECRET))
    }

    /// Reads settings from `(name, value)` pairs, so tests need not touch the process environment.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::explained(vars).map(|(settings, _)| settings)
    }

    /// The settings, and every setting of the table as they resolved it (secrets redacted):
    /// what `check-config` prints.
    pub fn explained(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<EffectiveSetting>), ConfigError> {
        let ours: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(PREFIX) && !name.starts_with(IGNORED_PREFIX))
            .filter(|(name, value)| !is_service_link(name, value))
            .collect();
        reject_unknown(&ours)?;
        let env = Env::new(&ours);

        let kafka =
            match env.text("ZEGO_BRIDGE_KAFKA_BROKERS") {
                Some(brokers) if brokers.split(',').any(|broker| !broker.trim().is_empty()) => {
                    check_broker_list(&brokers)
                        .map_err(|err| ConfigError::new("ZEGO_BRIDGE_KAFKA_BROKERS", err))?;
                    KafkaTarget::Brokers(brokers)
                }
                None if !ours
                    .iter()
                    .any(|(name, _)| name == "ZEGO_BRIDGE_KAFKA_BROKERS") =>
                {
                    env.note(
                        "ZEGO_BRIDGE_KAFKA_BROKERS",
                        "(unset: the embedded in-memory cluster, nothing persisted)",
                    );
                    KafkaTarget::Embedded
                }
                // Set but blank is a mistake (an empty Secret, a bad template), not a wish for the
                // embedded cluster, which would answer 200 to callbacks it never persists.
                _ => return Err(ConfigError::new(
                    "ZEGO_BRIDGE_KAFKA_BROKERS",
                    "is set but names no broker: give `host:port[,host:port…]`, or unset it to \
                     try the bridge on the embedded in-memory cluster",
                )),
            };
        let secrets_file = env
            .text("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE")
            .map(PathBuf::from);
        let secrets = match (
            env.text("ZEGO_BRIDGE_CALLBACK_SECRETS"),
            &secrets_file,
            &kafka,
        ) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::new(
                    "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                    "and ZEGO_BRIDGE_CALLBACK_SECRETS are both set: give the secrets one way",
                ))
            }
            (None, Some(path), _) => crate::secrets::read_secrets_file(path).map_err(|err| {
                ConfigError::new("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE", err.to_string())
            })?,
            (Some(value), None, _) => CallbackSecrets::parse(&value)
                .map_err(|err| ConfigError::new("ZEGO_BRIDGE_CALLBACK_SECRETS", err.to_string()))?,
            (None, None, KafkaTarget::Embedded) => {
                env.note("ZEGO_BRIDGE_CALLBACK_SECRETS", DEMO_SECRET);
                CallbackSecrets::single(Secret::new(DEMO_SECRET))
            }
            (None, None, KafkaTarget::Brokers(_)) => {
                return Err(ConfigError::new(
                    "ZEGO_BRIDGE_CALLBACK_SECRETS",
                    "is required when ZEGO_BRIDGE_KAFKA_BROKERS is set: give the callback secret \
                     from the ZEGOCLOUD console (`SECRET` or `APPID=SECRET`, comma-separated), \
                     or a file holding them in ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                ))
            }
        };

        let products = products(&env)?;
        let topics = topic_map(&ours, &env, products)?;

        let librdkafka = librdkafka_with_password_file(&ours, &env)?;
        crate::kafka::check_properties(&librdkafka).map_err(|err| {
            ConfigError::new(
                property_variable(err.property.as_deref().unwrap_or_default()),
                format!("librdkafka refuses it: {}", err.reason),
            )
        })?;

        let ack_mode = ack_mode(&env)?;
        let schema_registry = schema_registry(&env)?;
        if schema_registry.is_some() {
            one_type_per_topic(&topics)?;
        }
        let millis = |variable| env.number(variable).map(Duration::from_millis);
        let settings = Settings {
            listen_addr: env.address("ZEGO_BRIDGE_LISTEN_ADDR")?,
            admin_addr: env.address("ZEGO_BRIDGE_ADMIN_ADDR")?,
            secrets,
            secrets_file,
            max_clock_skew_secs: env.number("ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS")?,
            zim_verdict: BeforeSendVerdict::from_name(
                env.choice("ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT")?,
            )
            .expect("the table lists the verdicts' names"),
            max_body_bytes: env.number("ZEGO_BRIDGE_MAX_BODY_BYTES")? as usize,
            topics,
            products,
            librdkafka,
            schema_registry,
            shutdown_timeout: millis("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS")?,
            shutdown_report_wait: millis("ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS")?,
            termination_message_path: PathBuf::from(
                env.text("ZEGO_BRIDGE_TERMINATION_MESSAGE_PATH")
                    .expect("a default path"),
            ),
            retry_after_secs: env.number("ZEGO_BRIDGE_RETRY_AFTER_SECS")?,
            http_workers: env.number_or(
                "ZEGO_BRIDGE_HTTP_WORKERS",
                std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
            )? as usize,
            http_limits: HttpLimits {
                request_timeout: millis("ZEGO_BRIDGE_HTTP_REQUEST_TIMEOUT_MS")?,
                keep_alive: Duration::from_secs(env.number("ZEGO_BRIDGE_HTTP_KEEP_ALIVE_SECS")?),
                // Idle connections cost a few KiB each; too low a limit lets a crowd of idle
                // ones keep real callbacks waiting in the accept backlog.
                max_connections_per_worker: env.number("ZEGO_BRIDGE_HTTP_MAX_CONNECTIONS")?
                    as usize,
                max_buffered_body_bytes: env.number("ZEGO_BRIDGE_HTTP_MAX_BUFFERED_BODY_BYTES")?
                    as usize,
                max_buffered_head_bytes: env.number("ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES")?
                    as usize,
            },
            ack_mode,
            unavailable_after: millis("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS")?,
            dead_letter_path: PathBuf::from(
                env.text("ZEGO_BRIDGE_DEAD_LETTER_PATH")
                    .expect("a default path"),
            ),
            dead_letter_retry_interval: Some(millis("ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS")?)
                .filter(|interval| !interval.is_zero()),
            dedup_capacity: env.number("ZEGO_BRIDGE_DEDUP_CAPACITY")? as usize,
            probe_interval: millis("ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS")?,
            log_format: match env.choice("ZEGO_BRIDGE_LOG_FORMAT")? {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
            log_level: env.text("ZEGO_BRIDGE_LOG_LEVEL").expect("a default level"),
            log_events: env.flag_or("ZEGO_BRIDGE_LOG_EVENTS", kafka == KafkaTarget::Embedded)?,
            access_log: env.flag_or("ZEGO_BRIDGE_ACCESS_LOG", false)?,
            trusted_proxies: match env.text("ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES") {
                Some(value) => crate::routes::request_log::parse_trusted_proxies(&value)
                    .map_err(|err| ConfigError::new("ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES", err))?,
                None => Vec::new(),
            },
            kafka,
        };
        let largest_body = crate::zego::Product::ALL
            .iter()
            .filter(|product| settings.products.serves(**product))
            .map(|product| settings.max_body_bytes.max(product.body_limit_floor()))
            .max()
            .unwrap_or(settings.max_body_bytes);
        if settings.http_limits.max_buffered_body_bytes < largest_body {
            return Err(ConfigError::new(
                "ZEGO_BRIDGE_HTTP_MAX_BUFFERED_BODY_BYTES",
                format!(
                    "must be at least the largest body limit of the products served ({largest_body}: ZEGO_BRIDGE_MAX_BODY_BYTES, or 262144 for ZIM and AI Agent): no body of the largest size could ever be read"
                ),
            ));
        }
        Ok((settings, env.effective()))
    }

    /// librdkafka checks the producer's properties against one another only when a producer
    /// is created (`acks` against `enable.idempotence`, say): this creates one, sends nothing,
    /// and names the variable to fix.
    pub fn check_producer(&self) -> Result<(), ConfigError> {
        let bootstrap = match &self.kafka {
            KafkaTarget::Brokers(brokers) => brokers.as_str(),
            // Any address: the producer is dropped before it could matter.
            KafkaTarget::Embedded => "127.0.0.1:9",
        };
        let config = crate::kafka::producer_config(
            bootstrap,
            self.ack_mode.producer_defaults(),
            &self.librdkafka,
        );
        crate::kafka::check_producer(&config, &self.librdkafka).map_err(|err| {
            ConfigError::new(
                property_variable(err.property.as_deref().unwrap_or_default()),
                format!(
                    "librdkafka refuses the producer's properties: {}",
                    err.reason
                ),
            )
        })
    }

    pub fn is_embedded(&self) -> bool {
        self.kafka == KafkaTarget::Embedded
    }
}

/// The ack mode with its own settings. A mode's variables set under another mode are a
/// misunderstanding, and refused.
fn ack_mode(env: &Env) -> Result<AckMode, ConfigError> {
    let mode = env.choice("ZEGO_BRIDGE_ACK_MODE")?;
    for (variable, applies_to) in [
        ("ZEGO_BRIDGE_SPOOL_DIR", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_MAX_BYTES", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS", "spooled"),
        ("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "delivered"),
    ] {
        if mode != applies_to && env.is_set(variable) {
            return Err(ConfigError::new(
                variable,
                format!(
                    "only applies with ZEGO_BRIDGE_ACK_MODE={applies_to} (the mode is `{mode}`)"
                ),
            ));
        }
    }
    Ok(match mode {
        "delivered" => AckMode::Delivered {
            timeout: Duration::from_millis(env.number("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS")?),
        },
        "spooled" => AckMode::Spooled(SpoolSettings {
            dir: PathBuf::from(
                env.text("ZEGO_BRIDGE_SPOOL_DIR")
                    .expect("a default directory"),
            ),
            max_bytes: env.number("ZEGO_BRIDGE_SPOOL_MAX_BYTES")?,
            liveness_grace: Duration::from_millis(
                env.number("ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS")?,
            ),
        }),
        _ => AckMode::Queued,
    })
}

/// The schema registry, when `ZEGO_BRIDGE_SCHEMA_REGISTRY_URL` is set. Its other variables
/// without it, or a user without a password, are refused rather than ignored.
fn schema_registry(env: &Env) -> Result<Option<RegistrySettings>, ConfigError> {
    const URL: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_URL";
    const USERNAME: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME";
    const PASSWORD: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD";
    const PASSWORD_FILE: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE";
    const CA_FILE: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE";
    let Some(url) = env.text(URL) else {
        if let Some(variable) = [USERNAME, PASSWORD, PASSWORD_FILE, CA_FILE]
            .into_iter()
            .find(|variable| env.is_set(variable))
        {
            return Err(ConfigError::new(
                variable,
                format!("only applies with {URL}, which is not set"),
            ));
        }
        return Ok(None);
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&url).map_err(|err| {
        ConfigError::new(
            URL,
            format!("is not a URL ({err}): give `https://host:port[/path]`"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(
            URL,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::new(
            URL,
            format!("must not hold credentials (they would show in logs): use {USERNAME} and {PASSWORD_FILE}"),
        ));
    }
    let password = match (env.text(PASSWORD), env.text(PASSWORD_FILE)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                PASSWORD_FILE,
                format!("and {PASSWORD} are both set: give the password one way"),
            ))
        }
        (Some(password), None) => Some(password),
        (None, Some(path)) => {
            let password = std::fs::read_to_string(&path).map_err(|err| {
                ConfigError::new(PASSWORD_FILE, format!("cannot read {path}: {err}"))
            })?;
            let password = password.trim();
            if password.is_empty() {
                return Err(ConfigError::new(PASSWORD_FILE, format!("{path} is empty")));
            }
            Some(password.to_owned())
        }
        (None, None) => None,
    };
    let credentials = match (env.text(USERNAME), password) {
        (Some(username), Some(password)) => Some((username, Secret::new(&password))),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                USERNAME,
                format!("is set without a password: give {PASSWORD} or {PASSWORD_FILE}"),
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                USERNAME,
                "is needed with the registry's password",
            ))
        }
    };
    let ca_file = env.text(CA_FILE).map(PathBuf::from);
    if let Some(path) = &ca_file {
        crate::kafka::read_ca_file(path).map_err(|reason| {
            ConfigError::new(CA_FILE, format!("cannot use {}: {reason}", path.display()))
        })?;
    }
    Ok(Some(RegistrySettings {
        url,
        credentials,
        ca_file,
    }))
}

/// `ZEGO_BRIDGE_LIBRDKAFKA_*` with the SASL password of `ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE`,
/// as the service and its Kafka tools (`replay`, `topics --create`) read them.
fn librdkafka_with_password_file(
    vars: &[(String, String)],
    env: &Env,
) -> Result<LibrdkafkaProperties, ConfigError> {
    let mut librdkafka = librdkafka_properties(vars)?;
    if let Some(path) = env.text("ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE") {
        if librdkafka.0.contains_key("sasl.password") {
            return Err(ConfigError::new(
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                "and ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD are both set: give the password one way",
            ));
        }
        let password = std::fs::read_to_string(&path).map_err(|err| {
            ConfigError::new(
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                format!("cannot read {path}: {err}"),
            )
        })?;
        let password = password.trim();
        if password.is_empty() {
            return Err(ConfigError::new(
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                format!("{path} is empty"),
            ));
        }
        librdkafka
            .0
            .insert("sasl.password".to_owned(), password.to_owned());
    }
    Ok(librdkafka)
}

/// `ZEGO_BRIDGE_LIBRDKAFKA_*` as librdkafka properties, refusing those the bridge owns.
fn librdkafka_properties(vars: &[(String, String)]) -> Result<LibrdkafkaProperties, ConfigError> {
    let mut properties = LibrdkafkaProperties::default();
    for (name, value) in vars {
        let Some(property) = name.strip_prefix(LIBRDKAFKA_PREFIX) else {
            continue;
        };
        let property = property.to_ascii_lowercase().replace('_', ".");
        if property.is_empty() {
            return Err(ConfigError::new(name, "names no librdkafka property"));
        }
        if let Some((_, why)) = RESERVED_LIBRDKAFKA
            .iter()
            .find(|(reserved, _)| *reserved == property)
        {
            return Err(ConfigError::new(
                name,
                format!("`{property}` cannot be set here: {why}"),
            ));
        }
        properties.0.insert(property, value.clone());
    }
    Ok(properties)
}

/// The variable that sets a librdkafka property: `sasl.password` is
/// `ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD`.
pub fn property_variable(property: &str) -> String {
    if property.is_empty() {
        return format!("{LIBRDKAFKA_PREFIX}*");
    }
    format!(
        "{LIBRDKAFKA_PREFIX}{}",
        property.replace('.', "_").to_ascii_uppercase()
    )
}

/// What a Kafka client of the bridge's tools (`replay`) needs: the brokers and librdkafka
/// properties, read from the same variables as the service.
pub fn kafka_client_from_env() -> Result<(String, LibrdkafkaProperties), ConfigError> {
    kafka_client_from_vars(std::env::vars())
}

/// Refuses a broker list librdkafka would take and never connect with (`:`, `host:`,
/// `host:0`, an empty entry): each entry is `[scheme://]host[:port]`, the port 1 to 65535.
fn check_broker_list(brokers: &str) -> Result<(), String> {
    for (index, entry) in brokers.split(',').enumerate() {
        let position = index + 1;
        let entry = entry.trim();
        let address = entry.split_once("://").map_or(entry, |(_, rest)| rest);
        let (host, port) = match address.strip_prefix('[') {
            // [IPv6]:port
            Some(rest) => match rest.split_once(']') {
                Some((host, rest)) => (host, rest.strip_prefix(':')),
                None => return Err(format!("entry {position} ({entry:?}) has `[` without `]`")),
            },
            None => match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        if host.trim().is_empty() {
            return Err(format!(
                "entry {position} ({entry:?}) names no host: give `host:port[,host:port…]`"
            ));
        }
        if let Some(port) = port {
            if !matches!(port.parse::<u16>(), Ok(port) if port > 0) {
                return Err(format!(
                    "entry {position} ({entry:?}) has no valid port (1 to 65535)"
                ));
            }
        }
    }
    Ok(())
}

/// [`kafka_client_from_env`] from `(name, value)` pairs.
pub fn kafka_client_from_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(String, LibrdkafkaProperties), ConfigError> {
    let vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    let brokers = vars
        .iter()
        .find(|(name, _)| name == "ZEGO_BRIDGE_KAFKA_BROKERS")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                "ZEGO_BRIDGE_KAFKA_BROKERS",
                "is required: name the cluster to publish to",
            )
        })?;
    check_broker_list(&brokers)
        .map_err(|err| ConfigError::new("ZEGO_BRIDGE_KAFKA_BROKERS", err))?;
    Ok((
        brokers,
        librdkafka_with_password_file(&vars, &Env::new(&vars))?,
    ))
}

/// The schema registry of `ZEGO_BRIDGE_SCHEMA_REGISTRY_*`, as the service reads it (for
/// `zego-kafka-bridge replay`, which frames what it publishes the same way).
pub fn schema_registry_from_env() -> Result<Option<RegistrySettings>, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    schema_registry(&Env::new(&vars))
}

/// The topic of every event type, from `ZEGO_BRIDGE_TOPIC_PREFIX` and `ZEGO_BRIDGE_TOPIC_<TYPE>`,
/// as the service reads them (for `zego-kafka-bridge topics`).
pub fn topic_map_from_env() -> Result<TopicMap, ConfigError> {
    let vars: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    let env = Env::new(&vars);
    topic_map(&vars, &env, products(&env)?)
}

fn products(env: &Env) -> Result<ProductSet, ConfigError> {
    let value = env.text(PRODUCTS_VARIABLE).expect("a default");
    ProductSet::parse(&value).map_err(|reason| ConfigError::new(PRODUCTS_VARIABLE, reason))
}

/// The topic of each type, of the products `ZEGO_BRIDGE_PRODUCTS` names.
fn topic_map(
    vars: &[(String, String)],
    env: &Env,
    products: ProductSet,
) -> Result<TopicMap, ConfigError> {
    let prefix = env
        .text(TOPIC_PREFIX_VARIABLE)
        .expect("the prefix has a default");
    let mut overrides = Vec::new();
    for (name, topic) in vars {
        if !name.starts_with(TOPIC_OVERRIDE_PREFIX) || name == TOPIC_PREFIX_VARIABLE {
            continue;
        }
        let Some(kind) = catalog::ALL
            .iter()
            .find(|kind| topic_variable(kind.name) == *name)
        else {
            let known: Vec<String> = catalog::ALL
                .iter()
                .map(|kind| topic_variable(kind.name))
                .collect();
            return Err(ConfigError::new(
                name,
                match closest(name, known.iter().map(String::as_str)) {
                    Some(meant) => format!("names no event type; did you mean {meant}?"),
                    None => format!(
                        "names no event type; topic overrides are {}",
                        known.join(", ")
                    ),
                },
            ));
        };
        overrides.push((*kind, topic.clone()));
    }
    let topics = TopicMap::new(&prefix, &overrides).map_err(|err| match err {
        TopicError::Prefix(reason) => ConfigError::new(TOPIC_PREFIX_VARIABLE, reason),
        TopicError::Override { kind, reason } => ConfigError::new(topic_variable(kind), reason),
    })?;
    Ok(topics.serving(products))
}

/// With a schema registry a topic carries one schema, the versions of its subject
/// (`{topic}-value`): two types sent to one topic by overrides are refused.
fn one_type_per_topic(topics: &TopicMap) -> Result<(), ConfigError> {
    let mut owners: HashMap<&str, &'static str> = HashMap::new();
    for (kind, topic) in topics.iter() {
        if let Some(first) = owners.insert(&**topic, kind.name) {
            return Err(ConfigError::new(
                topic_variable(kind.name),
                format!(
                    "sends {} to {topic}, the topic of {first} too: with \
                     ZEGO_BRIDGE_SCHEMA_REGISTRY_URL a topic carries one schema (subject \
                     {topic}-value); give each type a topic of its own",
                    kind.name
                ),
            ));
        }
    }
    Ok(())
}

/// The variable that overrides the topic of the type named `kind`:
/// `ZEGO_BRIDGE_TOPIC_MODERATION_AUDIO_RESULT` for `moderation.audio.result`.
fn topic_variable(kind: &str) -> String {
    format!(
        "{TOPIC_OVERRIDE_PREFIX}{}",
        kind.replace('.', "_").to_ascii_uppercase()
    )
}

/// Whether `name=value` is one of the variables Kubernetes puts in a pod for each Service of its
/// namespace (service links): a Service named `zego-bridge-zego-kafka-bridge` gives
/// `ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_SERVICE_HOST`, `..._PORT=tcp://10.0.0.1:8080` and the like,
/// which are no settings and must not stop the start. Told by name and value together, so that
/// a misspelt setting is still refused.
fn is_service_link(name: &str, value: &str) -> bool {
    let is_port = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let is_url = |text: &str| {
        ["tcp://", "udp://", "sctp://"]
            .iter()
            .any(|scheme| text.starts_with(scheme))
    };
    if name.ends_with("_SERVICE_HOST") {
        return value.parse::<std::net::IpAddr>().is_ok();
    }
    if let Some((_, rest)) = name.rsplit_once("_SERVICE_PORT") {
        return (rest.is_empty() || rest.starts_with('_')) && is_port(value);
    }
    // `{SERVICE}_PORT_{N}_{PROTO}` and its `_PROTO`, `_PORT`, `_ADDR`.
    if let Some((_, rest)) = name.rsplit_once("_PORT_") {
        let parts: Vec<&str> = rest.split('_').collect();
        if let [port, proto, suffix @ ..] = parts.as_slice() {
            if is_port(port) && matches!(*proto, "TCP" | "UDP" | "SCTP") {
                return match suffix {
                    [] => is_url(value),
                    ["PROTO"] => value.eq_ignore_ascii_case(proto),
                    ["PORT"] => value == *port,
                    ["ADDR"] => value.parse::<std::net::IpAddr>().is_ok(),
                    _ => false,
                };
            }
        }
    }
    name.ends_with("_PORT") && is_url(value)
}

/// The one of `known` that `name` most resembles, if it resembles one closely: what a typo
/// meant.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(similarity, _)| *similarity > 0.9)
        .map(|(_, candidate)| candidate)
}

/// A misspelt variable would otherwise be ignored in silence and a default used instead.
fn reject_unknown(vars: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, _) in vars {
        let known = SETTINGS.iter().any(|setting| setting.variable == name)
            || name.starts_with(LIBRDKAFKA_PREFIX)
            || name.starts_with(TOPIC_OVERRIDE_PREFIX);
        if !known {
            return Err(ConfigError::new(
                name,
                match closest(name, SETTINGS.iter().map(|setting| setting.variable)) {
                    Some(variable) => format!("unknown variable; did you mean {variable}?"),
                    None => format!(
                        "unknown variable; the bridge reads {}, ZEGO_BRIDGE_TOPIC_<TYPE> and ZEGO_BRIDGE_LIBRDKAFKA_<PROPERTY>",
                        SETTINGS
                            .iter()
                            .map(|setting| setting.variable)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(
            vars.iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
    }

    fn scratch(name: &str, content: &str) -> String {
        let dir = std::env::temp_dir().join(format!("config-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn the_schema_registry_is_off_unless_its_url_is_set_and_its_settings_are_checked() {
        const BROKERS: (&str, &str) = ("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092");
        const SECRETS: (&str, &str) = ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s");
        const URL: &str = "ZEGO_BRIDGE_SCHEMA_REGISTRY_URL";
        let refused = |vars: &[(&str, &str)]| {
            let mut all = vec![BROKERS, SECRETS];
            all.extend_from_slice(vars);
            settings(&all).unwrap_err()
        };
        assert!(settings(&[BROKERS, SECRETS])
            .unwrap()
            .schema_registry
            .is_none());
        let password = scratch("password", " p4ss\n");
        let on = settings(&[
            BROKERS,
            SECRETS,
            (URL, " https://registry:8081/ "),
            ("ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME", "key"),
            ("ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE", &password),
        ])
        .unwrap()
        .schema_registry
        .unwrap();
        assert_eq!(
            on.url, "https://registry:8081",
            "trimmed, no trailing slash"
        );
        let (username, secret) = on.credentials.unwrap();
        assert_eq!((username.as_str(), secret.expose()), ("key", "p4ss"));

        for (vars, variable, says) in [
            (
                vec![("ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME", "key")],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME",
                "only applies with ZEGO_BRIDGE_SCHEMA_REGISTRY_URL",
            ),
            (vec![(URL, "registry:8081")], URL, "http:// or https://"),
            (vec![(URL, "ftp://registry")], URL, "http:// or https://"),
            (
                vec![(URL, "https://u:p@registry")],
                URL,
                "must not hold credentials",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME", "key"),
                ],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME",
                "without a password",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD", "p"),
                ],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME",
                "is needed",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD", "p"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE", &password),
                ],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE",
                "both set",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE", &password),
                ],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE",
                "no PEM certificate",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE", "/nonexistent/ca.pem"),
                ],
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE",
                "cannot use /nonexistent/ca.pem",
            ),
            (
                vec![
                    (URL, "https://r"),
                    ("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "zego.room.created"),
                ],
                "ZEGO_BRIDGE_TOPIC_ROOM_CLOSED",
                "the topic of room.created too",
            ),
        ] {
            let err = refused(&vars);
            assert_eq!(err.variable, variable, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        // Without a registry, two types may share a topic.
        assert!(settings(&[
            BROKERS,
            SECRETS,
            ("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "zego.room.created")
        ])
        .is_ok());
    }

    #[test]
    fn secrets_and_the_sasl_password_come_from_files() {
        let secrets = scratch(
            "secrets",
            "# comment
secret-one
4242=secret-two
",
        );
        let password = scratch("password", "  pass-word\n\n");
        let read = settings(&[
            ("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092"),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE", &secrets),
            ("ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE", &password),
        ])
        .unwrap();
        assert_eq!(read.secrets.count(), 2);
        assert_eq!(read.secrets_file.as_deref(), Some(Path::new(&secrets)));
        assert_eq!(read.librdkafka.0["sasl.password"], "pass-word");
        // The Kafka tools (`replay` in a pod, `topics --create`) read it the same way.
        let (_, tools) = kafka_client_from_vars([
            ("ZEGO_BRIDGE_KAFKA_BROKERS".to_owned(), "k:9092".to_owned()),
            (
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE".to_owned(),
                password.clone(),
            ),
        ])
        .unwrap();
        assert_eq!(tools.0["sasl.password"], "pass-word");

        for (vars, variable, never_shown) in [
            (
                vec![
                    ("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE", secrets.as_str()),
                    ("ZEGO_BRIDGE_CALLBACK_SECRETS", "inline-secret"),
                ],
                "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                "inline-secret",
            ),
            (
                vec![(
                    "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                    &*scratch("bad", "good-secret\n7=\n"),
                )],
                "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                "good-secret",
            ),
            (
                vec![("ZEGO_BRIDGE_CALLBACK_SECRETS_FILE", "/nonexistent/secrets")],
                "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
                "\u{0}",
            ),
            (
                vec![
                    ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
                    ("ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE", password.as_str()),
                    ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "other-password"),
                ],
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                "pass-word",
            ),
            (
                vec![
                    ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
                    (
                        "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                        &*scratch("empty", " \n"),
                    ),
                ],
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                "\u{0}",
            ),
        ] {
            let mut vars = vars;
            vars.push(("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092"));
            let err = settings(&vars).unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
            assert!(!err.to_string().contains(never_shown), "{err}");
        }
    }

    #[test]
    fn defaults_run_on_the_embedded_cluster_with_the_demo_secret() {
        // A real secret on the embedded cluster is not warned about as the demo one.
        let real = settings(&[("ZEGO_BRIDGE_CALLBACK_SECRETS", "a-real-one")]).unwrap();
        assert!(real.is_embedded() && !real.uses_demo_secret());
        let settings = settings(&[("PATH", "/bin")]).unwrap();
        assert!(settings.is_embedded());
        assert!(settings.uses_demo_secret());
        assert!(settings.log_events);
        assert_eq!(settings.listen_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(settings.admin_addr.to_string(), "0.0.0.0:9090");
        assert_eq!(settings.max_body_bytes, 65_536);
        assert_eq!(settings.max_clock_skew_secs, 300);
        assert_eq!(
            &**settings.topics.topic(&catalog::ROOM_CREATED),
            "zego.room.created"
        );
        assert!(settings
            .secrets
            .verify(1, "1", "2", &crate::zego::sign(DEMO_SECRET, "1", "2"))
            .is_ok());
    }

    #[test]
    fn brokers_without_a_secret_refuse_to_start() {
        let err = settings(&[("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092")]).unwrap_err();
        assert_eq!(err.variable, "ZEGO_BRIDGE_CALLBACK_SECRETS");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("ZEGO_BRIDGE_LISTEN_ADDR", "localhost"),
            ("ZEGO_BRIDGE_MAX_BODY_BYTES", "64k"),
            ("ZEGO_BRIDGE_MAX_BODY_BYTES", "10"),
            ("ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS", "-1"),
            ("ZEGO_BRIDGE_LOG_FORMAT", "xml"),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", "a,,b"),
            ("ZEGO_BRIDGE_TOPIC_ROOM_CREATD", "x"),
            ("ZEGO_BRIDGE_TOPIC_ROOM_CREATED", "bad topic!"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_BOOTSTRAP_SERVERS", "k:9092"),
            ("ZEGO_BRIDGE_MAX_BODY_BYTE", "1"),
            ("ZEGO_BRIDGE_ACK_MODE", "eventually"),
            ("ZEGO_BRIDGE_SPOOL_DIR", "/tmp/spool"),
            ("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS", "1000"),
            ("ZEGO_BRIDGE_HTTP_REQUEST_TIMEOUT_MS", "5"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
            assert!(!err.message.is_empty());
        }
    }

    /// Each typed setting of the table is read, through the table: a bad value is refused and
    /// names it.
    #[test]
    fn every_typed_setting_is_read_and_checked() {
        for setting in SETTINGS {
            if matches!(setting.kind, Kind::Text | Kind::Secret) {
                continue;
            }
            let mode = match setting.variable {
                name if name.starts_with("ZEGO_BRIDGE_SPOOL_") => "spooled",
                "ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS" => "delivered",
                _ => "queued",
            };
            let err = settings(&[
                ("ZEGO_BRIDGE_ACK_MODE", mode),
                (setting.variable, "not-a-valid-value"),
            ])
            .unwrap_err();
            assert_eq!(err.variable, setting.variable, "{err}");
            assert!(!err.message.contains("only applies"), "{err}");
        }
    }

    #[test]
    fn librdkafka_properties_and_topic_overrides() {
        let settings = settings(&[
            ("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092"),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("ZEGO_BRIDGE_TOPIC_PREFIX", "rtc"),
            ("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "rooms-closed"),
            ("ZEGO_BRIDGE_TEST_BROKERS", "ignored"),
        ])
        .unwrap();
        assert_eq!(settings.librdkafka.0["security.protocol"], "SASL_SSL");
        assert_eq!(settings.librdkafka.0["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(
            &**settings.topics.topic(&catalog::ROOM_CLOSED),
            "rooms-closed"
        );
        assert_eq!(
            &**settings.topics.topic(&catalog::ROOM_CREATED),
            "rtc.room.created"
        );
        assert_eq!(
            &**settings.topics.topic(&catalog::UNRECOGNIZED),
            "rtc.unrecognized"
        );
        assert!(!settings.log_events);
    }

    #[test]
    fn a_topic_override_is_named_after_its_type() {
        assert_eq!(
            topic_variable("moderation.audio.result"),
            "ZEGO_BRIDGE_TOPIC_MODERATION_AUDIO_RESULT"
        );
        for kind in catalog::ALL.iter() {
            let variable = topic_variable(kind.name);
            let settings = settings(&[(variable.as_str(), "custom-topic")]).unwrap();
            assert_eq!(&**settings.topics.topic(kind), "custom-topic", "{variable}");
        }
    }

    #[test]
    fn blank_brokers_refuse_to_start_instead_of_running_on_the_embedded_cluster() {
        for blank in ["", "  ", ",", " , "] {
            let err = settings(&[
                ("ZEGO_BRIDGE_KAFKA_BROKERS", blank),
                ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "ZEGO_BRIDGE_KAFKA_BROKERS", "{blank:?}");
        }
    }

    /// Lists librdkafka takes and never connects with are refused at start; the forms it
    /// understands pass.
    #[test]
    fn a_misspelt_variable_is_answered_with_the_one_it_resembles() {
        for (misspelt, meant) in [
            (
                "ZEGO_BRIDGE_CALLBACK_SECRET",
                "ZEGO_BRIDGE_CALLBACK_SECRETS",
            ),
            ("ZEGO_BRIDGE_KAFKA_BROKER", "ZEGO_BRIDGE_KAFKA_BROKERS"),
            (
                "ZEGO_BRIDGE_MAX_CLOCK_SKEW",
                "ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS",
            ),
            ("ZEGO_BRIDGE_ACKMODE", "ZEGO_BRIDGE_ACK_MODE"),
        ] {
            let err = settings(&[(misspelt, "x")]).unwrap_err();
            assert_eq!(err.variable, misspelt);
            assert_eq!(
                err.message,
                format!("unknown variable; did you mean {meant}?")
            );
        }
        let err = settings(&[("ZEGO_BRIDGE_SOMETHING_ELSE_ENTIRELY", "x")]).unwrap_err();
        assert!(err.message.contains("the bridge reads"), "{err}");
        let err = settings(&[("ZEGO_BRIDGE_TOPIC_ROOM_CLOSD", "x")]).unwrap_err();
        assert_eq!(
            err.message,
            "names no event type; did you mean ZEGO_BRIDGE_TOPIC_ROOM_CLOSED?"
        );
    }

    #[test]
    fn kubernetes_service_links_are_not_settings_and_a_misspelt_setting_still_is_refused() {
        // What Kubernetes puts in every pod of a namespace where the README's release runs.
        let links = [
            ("ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_SERVICE_HOST", "10.96.12.7"),
            ("ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_SERVICE_PORT", "8080"),
            ("ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_SERVICE_PORT_HTTP", "8080"),
            (
                "ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_PORT",
                "tcp://10.96.12.7:8080",
            ),
            (
                "ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_PORT_8080_TCP",
                "tcp://10.96.12.7:8080",
            ),
            ("ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_PORT_8080_TCP_PROTO", "tcp"),
            ("ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_PORT_8080_TCP_PORT", "8080"),
            (
                "ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_PORT_8080_TCP_ADDR",
                "10.96.12.7",
            ),
            (
                "ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_ADMIN_SERVICE_HOST",
                "10.96.12.8",
            ),
        ];
        assert!(settings(&links).is_ok(), "{:?}", settings(&links).err());
        for misspelt in [
            ("ZEGO_BRIDGE_ADMIN_PORT", "9090"),
            ("ZEGO_BRIDGE_LISTEN_PORT", "8080"),
            ("ZEGO_BRIDGE_KAFKA_SERVICE_HOST", "kafka.example"),
            ("ZEGO_BRIDGE_SERVICE_PORT_X", "http"),
        ] {
            let err = settings(&[misspelt]).unwrap_err();
            assert_eq!(err.variable, misspelt.0, "{err}");
        }
    }

    #[test]
    fn broker_lists_that_name_no_broker_are_refused() {
        for bad in [
            ":",
            "127.0.0.1:",
            "k:0",
            "k:65536",
            "k:x",
            "k:9092,,j:9092",
            "[::1",
            "PLAINTEXT://:9092",
        ] {
            let err = settings(&[
                ("ZEGO_BRIDGE_KAFKA_BROKERS", bad),
                ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "ZEGO_BRIDGE_KAFKA_BROKERS", "{bad:?}");
            assert!(err.to_string().contains("entry"), "{bad:?}: {err}");
        }
        for good in [
            "k:9092",
            "k",
            " a:1 , b:65535 ",
            "[::1]:9092",
            "SASL_SSL://broker-0.kafka.svc:9093",
        ] {
            assert!(check_broker_list(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_misspelt_or_invalid_librdkafka_property_is_refused_without_its_value() {
        for (name, value) in [
            ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWRD", "hunter2-opensesame"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_LINGER_MS", "soon-hunter2"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SECURITY_PROTOCOL", "hunter2ssl"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let settings = settings(&[
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", "hunter2,42=swordfish"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "opensesame"),
        ])
        .unwrap();
        let debug = format!("{settings:?}");
        for secret in ["hunter2", "swordfish", "opensesame"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("sasl.password"));
    }
}
