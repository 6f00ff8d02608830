//! Every setting, declared once: its variable, default, accepted values and meaning. The parse
//! code reads values through [`Env`], which takes defaults and ranges from here; the
//! unknown-variable check, `--help`, docs/configuration.md and the Helm chart's checks all come
//! from the same table.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::ConfigError;

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An IP address and port.
    Address,
    /// A whole number within a range.
    Number { min: u64, max: u64 },
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `true` or `false` (`1` or `0`).
    Flag,
    /// Free text (a path, a list, a filter).
    Text,
    /// Free text that is never shown.
    Secret,
}

/// Where the reference lists a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Listeners,
    Kafka,
    SchemaRegistry,
    Callbacks,
    AckMode,
    Http,
    Logs,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Listeners => "Listeners",
            Section::Kafka => "Kafka",
            Section::SchemaRegistry => "Schema registry",
            Section::Callbacks => "Callbacks",
            Section::AckMode => "Ack mode and what happens to events",
            Section::Http => "HTTP limits",
            Section::Logs => "Logs",
        }
    }
}

#[derive(Debug)]
pub struct Setting {
    pub variable: &'static str,
    pub section: Section,
    pub kind: Kind,
    /// The value when unset, as it would be written; `None` when there is none or it depends
    /// on other settings (then `shown_default` says what it is).
    pub default: Option<&'static str>,
    /// How the reference states the default when `default` cannot.
    pub shown_default: Option<&'static str>,
    /// Markdown.
    pub meaning: &'static str,
}

impl Setting {
    /// The default as the reference and `--help` show it.
    pub fn default_text(&self) -> String {
        match (self.shown_default, self.default) {
            (Some(shown), _) => shown.to_owned(),
            (None, Some(default)) => format!("`{default}`"),
            (None, None) => "*(unset)*".to_owned(),
        }
    }
}

const fn number(min: u64, max: u64) -> Kind {
    Kind::Number { min, max }
}

/// The variables the service reads, besides the `ZEGO_BRIDGE_TOPIC_<TYPE>` and
/// `ZEGO_BRIDGE_LIBRDKAFKA_<PROPERTY>` families.
pub const SETTINGS: &[Setting] = &[
    Setting {
        variable: "ZEGO_BRIDGE_LISTEN_ADDR",
        section: Section::Listeners,
        kind: Kind::Address,
        default: Some("0.0.0.0:8080"),
        shown_default: None,
        meaning: "Public listener: `POST /v1/callbacks` only.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_ADMIN_ADDR",
        section: Section::Listeners,
        kind: Kind::Address,
        default: Some("0.0.0.0:9090"),
        shown_default: None,
        meaning: "Admin listener: `/metrics`, `/healthz`, `/readyz`. Keep it off the public ingress.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_KAFKA_BROKERS",
        section: Section::Kafka,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "Bootstrap servers, `host:port,…`. Unset: the embedded in-memory cluster (nothing \
                  persisted). Set but blank is refused.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_TOPIC_PREFIX",
        section: Section::Kafka,
        kind: Kind::Text,
        default: Some("zego"),
        shown_default: None,
        meaning: "Topics are `{prefix}.{type}`.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS",
        section: Section::Kafka,
        kind: number(0, 3_600_000),
        default: Some("10000"),
        shown_default: None,
        meaning: "Once no broker has been reachable for this long, callbacks get 503 and the \
                  bridge reports not ready (except in ack mode `spooled`). A shorter blip is \
                  absorbed by the queue.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
        section: Section::Kafka,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "A file holding the SASL password (librdkafka's `sasl.password`; not with \
                  `ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD`), read at start. Edge whitespace is \
                  cut. A new password takes a restart (a rolling one: \
                  `kubectl rollout restart`).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS",
        section: Section::Kafka,
        kind: number(100, 300_000),
        default: Some("5000"),
        shown_default: None,
        meaning: "How often Kafka is asked for metadata (reachability, missing topics). While \
                  Kafka is unreachable, every second instead, so that its return is seen at once; \
                  while a configured topic is missing, after 1, 2, 4… s up to this interval.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SCHEMA_REGISTRY_URL",
        section: Section::SchemaRegistry,
        kind: Kind::Text,
        default: None,
        shown_default: Some("*(unset: no registry, plain JSON values)*"),
        meaning: "The root of a Confluent-compatible schema registry API (`https://registry:8081`; \
                  Apicurio Registry: `…/apis/ccompat/v7`). Set, the bridge registers each event \
                  type's JSON Schema under its topic's subject (`{topic}-value`) at start, the \
                  registry checking compatibility, and writes every value in the Confluent wire \
                  format (byte 0, the schema id in 4 bytes, the JSON). A registry that cannot be \
                  reached within about 30 s, or refuses a schema, stops the start with the reason.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME",
        section: Section::SchemaRegistry,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "HTTP basic user name for the registry (a Confluent Cloud API key, say); needs a \
                  password.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD",
        section: Section::SchemaRegistry,
        kind: Kind::Secret,
        default: None,
        shown_default: None,
        meaning: "Its password (not with `ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE`).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE",
        section: Section::SchemaRegistry,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "A file holding the password, read at start; edge whitespace is cut.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE",
        section: Section::SchemaRegistry,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "PEM certificates to trust for the registry's TLS, besides the system's.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_CALLBACK_SECRETS",
        section: Section::Callbacks,
        kind: Kind::Secret,
        default: None,
        shown_default: Some("*(required with brokers, or the file)*"),
        meaning: "Comma-separated entries, each `SECRET` (valid for any app) or `APPID=SECRET` \
                  (that app only). A secret that holds `,` or `=` (or edge spaces) needs the JSON \
                  form, which holds any character: `{\"*\": [\"old\", \"new\"], \"4242\": \"a,b=c\"}` \
                  (`*`: any app). In the JSON form a product name (`zim`, `ai_agent`, `asr`, \
                  `digital_human`, `cloud_recording`, `cloud_player`, `super_board`) keys an \
                  object of the same form whose secrets replace the others for that product's \
                  callbacks: `{\"*\": \"rtc\", \"zim\": {\"*\": [\"callback\", \"server\"]}}`. \
                  Errors name the entry, never its text. Unset with no brokers: the demo secret \
                  that `send` uses.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_CALLBACK_SECRETS_FILE",
        section: Section::Callbacks,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "A file holding the callback secrets instead (a Kubernetes Secret volume; \
                  not with `ZEGO_BRIDGE_CALLBACK_SECRETS`): the same syntax, where line breaks \
                  also separate entries and lines starting with `#` are skipped. Read again \
                  within a second of a change, so a rotation needs no restart; a change that \
                  makes it unreadable or invalid keeps the secrets in use, and is logged, \
                  counted and alerted on. Must be valid at start.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_PRODUCTS",
        section: Section::Callbacks,
        kind: Kind::Text,
        default: Some("all"),
        shown_default: None,
        meaning: "The products whose callbacks the bridge takes: `all`, or some of `rtc`, `zim`, \
                  `ai_agent`, `asr`, `digital_human`, `cloud_recording`, `cloud_player`, \
                  `super_board` separated by commas. The paths of the others answer 404, and \
                  their topics are neither expected in Kafka (probed, alerted on) nor listed or \
                  created by `topics`. Cloud Recording's callbacks on the RTC path need \
                  `cloud_recording`.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT",
        section: Section::Callbacks,
        kind: Kind::Choice(crate::zego::zim::BeforeSendVerdict::NAMES),
        default: Some("neutral"),
        shown_default: None,
        meaning: "The answer to ZIM's synchronous `before_send_msg` callback, given at once \
                  without waiting for Kafka: `neutral` (no opinion: ZIM's default and its \
                  moderation decide), `send`, `silent_send` (the sender is told it was sent, \
                  no one receives it) or `block`. It applies to every message: a decision per \
                  message needs a service of its own (docs/products.md).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS",
        section: Section::Callbacks,
        kind: number(0, u64::MAX),
        default: Some("300"),
        shown_default: None,
        meaning: "Refuse (401) a callback whose `timestamp` is further than this from now. `0` \
                  disables the check.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_MAX_BODY_BYTES",
        section: Section::Callbacks,
        kind: number(256, 16 * 1024 * 1024),
        default: Some("65536"),
        shown_default: None,
        meaning: "Larger bodies get 413; on ZIM's and AI Agent's paths the limit is at least \
                  262144 (256 KiB: a ZIM message of 32 KB escaped, AI Agent's `UserAudioData` \
                  with 1–1.5 s of base64 audio). An event larger than the producer's \
                  `message.max.bytes` \
                  (librdkafka's default: 1,000,000 bytes, less 4 KiB for key and headers) also \
                  gets 413: no retry could deliver it.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_DEDUP_CAPACITY",
        section: Section::Callbacks,
        kind: number(0, 10_000_000),
        default: Some("100000"),
        shown_default: None,
        meaning: "Recent event ids remembered in this pod: a retry of an accepted callback is \
                  answered 200 without a second publish. Used signatures are remembered apart, \
                  each for twice `ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS` whatever comes between (at \
                  most 200,000 of the pod's own and 400,000 of the other replicas'; this many when the skew \
                  check is off), so that one reused on \
                  another body is refused. `0` turns off the ids' deduplication only (and the \
                  signatures' memory too when the skew check is off as well).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_RETRY_AFTER_SECS",
        section: Section::Callbacks,
        kind: number(1, 3600),
        default: Some("2"),
        shown_default: None,
        meaning: "`Retry-After` of 503 replies.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_ACK_MODE",
        section: Section::AckMode,
        kind: Kind::Choice(&["queued", "delivered", "spooled"]),
        default: Some("queued"),
        shown_default: None,
        meaning: "When a callback is answered 200: `queued` once the event is in the producer's \
                  queue; `delivered` once Kafka acknowledged it (acks=all); `spooled` once it is \
                  appended to a local write-ahead spool and fsync'd. See \
                  [RELIABILITY.md](RELIABILITY.md).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS",
        section: Section::AckMode,
        kind: number(10, 600_000),
        default: Some("5000"),
        shown_default: None,
        meaning: "With `delivered`: how long a request waits for Kafka before it gets 503. \
                  Refused with another mode.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SPOOL_DIR",
        section: Section::AckMode,
        kind: Kind::Text,
        default: Some("spool"),
        shown_default: None,
        meaning: "With `spooled`: the spool's directory. Put it on a persistent volume. Refused \
                  with another mode.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SPOOL_MAX_BYTES",
        section: Section::AckMode,
        kind: number(1024 * 1024, u64::MAX),
        default: Some("1073741824"),
        shown_default: None,
        meaning: "With `spooled`: disk the spool may use (at least 1 MiB). When it is full, \
                  callbacks get 503.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS",
        section: Section::AckMode,
        kind: number(1_000, 3_600_000),
        default: Some("60000"),
        shown_default: None,
        meaning: "With `spooled`: while the spool cannot write (disk full, read-only), callbacks \
                  get 503 and `/readyz` fails, and the bridge retries every second by itself; \
                  past this grace `/healthz` fails too, so that Kubernetes restarts the pod.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_DEAD_LETTER_PATH",
        section: Section::AckMode,
        kind: Kind::Text,
        default: Some("dead-letter.jsonl"),
        shown_default: None,
        meaning: "Where acknowledged events that could not be delivered are written, one JSON \
                  line each (see `replay`). It must be a regular file (or not exist yet) on a \
                  disk that takes a write: proven at start (a startup error otherwise) and every \
                  second beside it (`<file>.probe`); while it cannot, ack mode `queued` answers \
                  503. Put it on a volume.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS",
        section: Section::AckMode,
        kind: number(0, 86_400_000),
        default: Some("30000"),
        shown_default: None,
        meaning: "How often the bridge sends its dead letters again while Kafka is reachable. \
                  The file stays the record until Kafka acknowledges each letter: one that \
                  fails again stays for the next pass, one no retry can deliver (too large, not \
                  authorized) moves to `<file>.rejected` for `replay` once the cause is fixed. \
                  `0`: never (`replay` publishes them while the bridge is stopped: it refuses \
                  the file of a running one).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS",
        section: Section::AckMode,
        kind: number(0, 3_600_000),
        default: Some("20000"),
        shown_default: None,
        meaning: "On SIGTERM: how long to finish requests in progress and flush queued events.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS",
        section: Section::AckMode,
        kind: number(0, 600_000),
        default: Some("35000"),
        shown_default: None,
        meaning: "When a shutdown leaves acknowledged events not in Kafka (dead-lettered at the \
                  deadline, or waiting in the dead-letter file since an outage; the spool's are \
                  safe on its disk and not counted), how long the admin port stays open so that \
                  Prometheus scrapes \
                  `zego_bridge_undelivered_at_shutdown` before the pod goes: the bridge exits at \
                  the first scrape of `/metrics` after the count is set, or when this runs out. \
                  Longer than the scrape interval. 0: exit at once; a second SIGTERM or Ctrl-C \
                  ends the wait too.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_TERMINATION_MESSAGE_PATH",
        section: Section::AckMode,
        kind: Kind::Text,
        default: Some("/dev/termination-log"),
        shown_default: None,
        meaning: "Where the bridge writes, as it exits, what became of the events it accepted \
                  (all delivered; or how many were dead-lettered at the deadline, and where; or \
                  left in the spool). Kubernetes shows it as the container's termination \
                  message, after the metrics port has closed. The default path is written only \
                  when it exists (Kubernetes makes it); any other is created.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_WORKERS",
        section: Section::Http,
        kind: number(1, 256),
        default: None,
        shown_default: Some("CPU count"),
        meaning: "Threads serving the public listener.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_REQUEST_TIMEOUT_MS",
        section: Section::Http,
        kind: number(100, 600_000),
        default: Some("5000"),
        shown_default: None,
        meaning: "Time allowed for a request's headers, and again for its body (408 after \
                  that). Slow clients cannot hold connections.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_KEEP_ALIVE_SECS",
        section: Section::Http,
        kind: number(0, 3600),
        default: Some("15"),
        shown_default: None,
        meaning: "Idle keep-alive connections are closed after this. `0` turns keep-alive off.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_MAX_CONNECTIONS",
        section: Section::Http,
        kind: number(1, 1_000_000),
        default: Some("4096"),
        shown_default: None,
        meaning: "Open connections per worker (`ZEGO_BRIDGE_HTTP_WORKERS` of them). Beyond it, \
                  new connections wait in the accept backlog. Each connection holding a head up \
                  to the 4 KiB that is never charged costs about 11 KiB (8,000 of them: 106 MiB \
                  RSS, measured); a head beyond it is charged to \
                  `ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES`. The default keeps 2 workers under \
                  the chart's 256 Mi limit (docs/http.md gives the sum); more connections \
                  than that from one client are the ingress's to cap.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_MAX_BUFFERED_BODY_BYTES",
        section: Section::Http,
        kind: number(64 * 1024, 4 * 1024 * 1024 * 1024),
        default: Some("8388608"),
        shown_default: None,
        meaning: "Bytes of request bodies held in memory at once, across all connections (a \
                  body counts for the memory its arrived bytes take, never for the \
                  `Content-Length` it declares). Past it, 503 with `Retry-After` and the \
                  connection is closed. ZIM's path has a budget of its own of the same size, so \
                  that no flood elsewhere refuses a `before_send_msg`. At least the largest body \
                  limit (`ZEGO_BRIDGE_MAX_BODY_BYTES`, 262144 on ZIM's and AI Agent's paths).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES",
        section: Section::Http,
        kind: number(128 * 1024, 4 * 1024 * 1024 * 1024),
        default: Some("16777216"),
        shown_default: None,
        meaning: "Bytes of unfinished request heads held in memory at once, across all \
                  connections, beyond the first 4 KiB of each head (never charged: a callback's \
                  head is a few hundred bytes). A head that would go past it is answered 503 \
                  with `Retry-After` and its connection closed. Without it, each connection may \
                  hold 128 KiB of an unfinished head: 3,000 of them took 398 MiB RSS.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES",
        section: Section::Http,
        kind: Kind::Text,
        default: None,
        shown_default: None,
        meaning: "Comma-separated addresses or CIDR ranges of the proxies in front of the bridge \
                  (ingress controller, load balancer), e.g. `10.0.0.0/8`. Logs name a request's \
                  client from `X-Forwarded-For` only when the connection comes from one of \
                  them, as the first address from the right that is not; otherwise the \
                  connection's peer. Unset: `X-Forwarded-For` is ignored.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_LOG_FORMAT",
        section: Section::Logs,
        kind: Kind::Choice(&["text", "json"]),
        default: Some("text"),
        shown_default: None,
        meaning: "`text` or `json` (one JSON object per line).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_LOG_LEVEL",
        section: Section::Logs,
        kind: Kind::Text,
        default: Some("info"),
        shown_default: None,
        meaning: "A `RUST_LOG`-style filter, e.g. `info,rdkafka=warn`.",
    },
    Setting {
        variable: "ZEGO_BRIDGE_LOG_EVENTS",
        section: Section::Logs,
        kind: Kind::Flag,
        default: None,
        shown_default: Some("`true` without brokers, else `false`"),
        meaning: "Log every published event (payload included; in JSON logs, as an object).",
    },
    Setting {
        variable: "ZEGO_BRIDGE_ACCESS_LOG",
        section: Section::Logs,
        kind: Kind::Flag,
        default: Some("false"),
        shown_default: None,
        meaning: "One info line per callback request (target `zego_kafka_bridge::access`): \
                  request id, client, path, status, type, app id, duration. Refusals are \
                  logged either way, at most 20 a second after a burst of 100 (every one is \
                  counted in the metrics; a logged line says how many were not).",
    },
];

/// The setting of this variable. Every variable the parse code reads is in the table; a test
/// reads them all.
pub fn setting(variable: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|setting| setting.variable == variable)
        .unwrap_or_else(|| panic!("{variable} is not in the settings table"))
}

/// The values of the table's variables, trimmed, blank ones left out; typed by the table.
/// Every value the parse code reads is noted as it is resolved, so that `check-config` shows
/// exactly what the service would run with.
pub struct Env {
    values: HashMap<&'static str, String>,
    /// What each variable read resolved to; `None` for one read and found unset.
    resolved: RefCell<BTreeMap<&'static str, Option<String>>>,
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The variable was set.
    Set,
    /// The table's default, or one that follows from other settings.
    Default,
    /// Read, and unset: an optional setting left out.
    Unset,
    /// Not read: it does not apply to this configuration (another ack mode, say).
    Unused,
}

/// One setting as the service would run with it; a secret's value is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSetting {
    pub variable: &'static str,
    pub value: Option<String>,
    pub origin: Origin,
}

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

impl Env {
    /// Keeps the values of the table's variables from `vars`.
    pub fn new(vars: &[(String, String)]) -> Self {
        let values = vars
            .iter()
            .filter_map(|(name, value)| {
                let setting = SETTINGS.iter().find(|setting| setting.variable == name)?;
                let value = value.trim();
                (!value.is_empty()).then(|| (setting.variable, value.to_owned()))
            })
            .collect();
        Env {
            values,
            resolved: RefCell::default(),
        }
    }

    /// Notes the value a setting resolved to (a secret only as redacted).
    pub(super) fn note(&self, variable: &str, value: impl std::fmt::Display) {
        let setting = setting(variable);
        let shown = match setting.kind {
            Kind::Secret => REDACTED.to_owned(),
            _ => value.to_string(),
        };
        self.resolved
            .borrow_mut()
            .insert(setting.variable, Some(shown));
    }

    /// Every setting of the table, in its order, with the value it resolved to.
    pub fn effective(&self) -> Vec<EffectiveSetting> {
        let resolved = self.resolved.borrow();
        SETTINGS
            .iter()
            .map(|setting| {
                let read = resolved.get(setting.variable);
                let value = read.cloned().flatten();
                let origin = match (read, self.values.contains_key(setting.variable)) {
                    (None, _) => Origin::Unused,
                    (Some(None), _) => Origin::Unset,
                    (Some(Some(_)), true) => Origin::Set,
                    (Some(Some(_)), false) => Origin::Default,
                };
                EffectiveSetting {
                    variable: setting.variable,
                    value,
                    origin,
                }
            })
            .collect()
    }

    /// Whether the variable was given a (non-blank) value.
    pub fn is_set(&self, variable: &str) -> bool {
        setting(variable);
        self.values.contains_key(variable)
    }

    /// The value given, else the table's default.
    pub fn text(&self, variable: &str) -> Option<String> {
        let setting = setting(variable);
        let value = self
            .values
            .get(variable)
            .cloned()
            .or_else(|| setting.default.map(str::to_owned));
        match &value {
            Some(value) => self.note(variable, value),
            None => {
                self.resolved.borrow_mut().insert(setting.variable, None);
            }
        }
        value
    }

    /// A number within the table's range; `dynamic_default` where the table has none.
    pub fn number_or(&self, variable: &str, dynamic_default: u64) -> Result<u64, ConfigError> {
        let setting = setting(variable);
        let Kind::Number { min, max } = setting.kind else {
            panic!("{variable} is not a number");
        };
        let Some(text) = self.values.get(variable) else {
            let number = setting
                .default
                .map(|default| default.parse().expect("a numeric default"))
                .unwrap_or(dynamic_default);
            self.note(variable, number);
            return Ok(number);
        };
        let number = text.parse::<u64>().map_err(|_| {
            ConfigError::new(variable, format!("must be a whole number, got {text:?}"))
        })?;
        if !(min..=max).contains(&number) {
            return Err(ConfigError::new(
                variable,
                format!("must be between {min} and {max}, got {number}"),
            ));
        }
        self.note(variable, number);
        Ok(number)
    }

    /// A number within the table's range, or its default.
    pub fn number(&self, variable: &str) -> Result<u64, ConfigError> {
        self.number_or(variable, 0)
    }

    pub fn address(&self, variable: &str) -> Result<SocketAddr, ConfigError> {
        let setting = setting(variable);
        let text = self.text(variable).expect("addresses have defaults");
        text.parse().map_err(|_| {
            ConfigError::new(
                variable,
                format!(
                    "must be an IP address and port such as {}, got {text:?}",
                    setting.default.unwrap_or("0.0.0.0:8080")
                ),
            )
        })
    }

    /// One of the table's words.
    pub fn choice(&self, variable: &str) -> Result<&'static str, ConfigError> {
        let setting = setting(variable);
        let Kind::Choice(words) = setting.kind else {
            panic!("{variable} is not a choice");
        };
        let text = self.text(variable).expect("choices have defaults");
        words
            .iter()
            .find(|word| **word == text)
            .copied()
            .ok_or_else(|| {
                let listed: Vec<String> = words.iter().map(|word| format!("`{word}`")).collect();
                ConfigError::new(
                    variable,
                    format!("must be one of {}, got {text:?}", listed.join(", ")),
                )
            })
    }

    pub fn flag_or(&self, variable: &str, dynamic_default: bool) -> Result<bool, ConfigError> {
        let flag = match self.values.get(variable).map(String::as_str) {
            None => dynamic_default,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    variable,
                    format!("must be `true` or `false`, got {other:?}"),
                ))
            }
        };
        self.note(variable, flag);
        Ok(flag)
    }
}

/// The reference of the settings as Markdown tables, one per section (docs/configuration.md).
pub fn reference_tables() -> String {
    let mut sections: Vec<Section> = SETTINGS.iter().map(|setting| setting.section).collect();
    sections.sort();
    sections.dedup();
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!(
            "### {}\n\n| variable | default | meaning |\n|---|---|---|\n",
            section.title()
        ));
        for setting in SETTINGS.iter().filter(|setting| setting.section == section) {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                setting.variable,
                setting.default_text(),
                setting.meaning
            ));
        }
        out.push('\n');
    }
    out
}

/// The settings as plain text for `--help`: each variable with its default.
pub fn help_text() -> String {
    let mut out =
        String::from("Environment variables (docs/configuration.md says what each does):\n");
    for setting in SETTINGS {
        let default = setting.default_text().replace(['`', '*'], "");
        out.push_str(&format!("  {:<42} {}\n", setting.variable, default));
    }
    out.push_str("  ZEGO_BRIDGE_TOPIC_<TYPE>                   {prefix}.{type}\n");
    out.push_str("  ZEGO_BRIDGE_LIBRDKAFKA_<PROPERTY>          the bridge's producer defaults\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks the generated part of docs/configuration.md.
    const BEGIN: &str = "<!-- BEGIN GENERATED SETTINGS: edit src/configuration/table.rs, then run `UPDATE_DOCS=1 cargo test docs` -->";
    const END: &str = "<!-- END GENERATED SETTINGS -->";

    #[test]
    fn docs_of_the_settings_are_up_to_date() {
        crate::generated::assert_current(
            "docs/configuration.md",
            BEGIN,
            END,
            reference_tables().trim_end(),
        );
    }

    #[test]
    fn every_default_is_a_valid_value() {
        for setting in SETTINGS {
            let Some(default) = setting.default else {
                // Unset, or a default that depends on the machine or on other settings.
                continue;
            };
            let env = Env::new(&[(setting.variable.to_owned(), default.to_owned())]);
            match setting.kind {
                Kind::Address => assert!(env.address(setting.variable).is_ok()),
                Kind::Number { .. } => assert!(env.number(setting.variable).is_ok()),
                Kind::Choice(_) => assert!(env.choice(setting.variable).is_ok()),
                Kind::Flag | Kind::Text | Kind::Secret => {}
            }
        }
    }

    #[test]
    fn variables_are_unique_and_named_for_the_bridge() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|setting| setting.variable).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
        assert!(names
            .iter()
            .all(|name| name.starts_with(super::super::PREFIX)));
    }
}
