//! The configuration the service would run with, as `check-config` prints it: every setting
//! with its value and where it comes from, the topic of every event type, and the producer's
//! librdkafka properties. Secrets are redacted; the output can be kept and diffed.

use std::fmt::Write;

use super::{EffectiveSetting, Origin, Settings, REDACTED};
use crate::kafka::{is_sensitive, producer_properties, PropertySource};

pub fn render(settings: &Settings, effective: &[EffectiveSetting]) -> String {
    let mut out = String::from("# Settings (docs/configuration.md)\n");
    let width = effective
        .iter()
        .map(|setting| setting.variable.len() + setting.value.as_deref().map_or(0, str::len) + 1)
        .max()
        .unwrap_or(0);
    for setting in effective {
        let (line, origin) = match (&setting.value, setting.origin) {
            (Some(value), Origin::Set) => (format!("{}={value}", setting.variable), "set"),
            (Some(value), _) => (format!("{}={value}", setting.variable), "default"),
            (None, Origin::Unset) => (setting.variable.to_owned(), "unset"),
            (None, _) => (
                setting.variable.to_owned(),
                "not used with this ack mode or cluster",
            ),
        };
        let _ = writeln!(out, "{line:width$}  # {origin}");
    }

    out.push_str("\n# Topics (ZEGO_BRIDGE_TOPIC_PREFIX, ZEGO_BRIDGE_TOPIC_<TYPE>)\n");
    for (kind, topic) in settings.topics.iter() {
        let _ = writeln!(out, "{:40} -> {topic}", kind.name);
    }

    out.push_str("\n# librdkafka producer properties (ZEGO_BRIDGE_LIBRDKAFKA_<PROPERTY>)\n");
    let properties =
        producer_properties(settings.ack_mode.producer_defaults(), &settings.librdkafka);
    let password_from_file = effective.iter().any(|setting| {
        setting.variable == "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE" && setting.value.is_some()
    });
    for (property, (value, source)) in properties {
        let value = if is_sensitive(&property) {
            REDACTED
        } else {
            value.as_str()
        };
        let source = match source {
            PropertySource::Bridge => "bridge default".to_owned(),
            PropertySource::AckMode => format!("ack mode {}", settings.ack_mode.as_str()),
            PropertySource::User if property == "sasl.password" && password_from_file => {
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE".to_owned()
            }
            PropertySource::User => super::property_variable(&property),
        };
        let _ = writeln!(out, "{:40}  # {source}", format!("{property}={value}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn shows_values_and_origins_and_never_a_secret() {
        let (settings, effective) = Settings::explained(vars(&[
            ("ZEGO_BRIDGE_KAFKA_BROKERS", "k1:9092,k2:9092"),
            (
                "ZEGO_BRIDGE_CALLBACK_SECRETS",
                "s3cr3t-default,42=s3cr3t-app",
            ),
            ("ZEGO_BRIDGE_ACK_MODE", "delivered"),
            ("ZEGO_BRIDGE_TOPIC_ROOM_CLOSED", "rooms-closed"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD", "hunter2-password"),
            ("ZEGO_BRIDGE_LIBRDKAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("ZEGO_BRIDGE_HTTP_WORKERS", "3"),
        ]))
        .unwrap();
        let text = render(&settings, &effective);
        for line in [
            "ZEGO_BRIDGE_KAFKA_BROKERS=k1:9092,k2:9092",
            "ZEGO_BRIDGE_CALLBACK_SECRETS=<redacted>",
            "ZEGO_BRIDGE_HTTP_WORKERS=3",
            "ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS=",
            "ZEGO_BRIDGE_LOG_EVENTS=false",
            "room.closed",
            "-> rooms-closed",
            "-> zego.room.created",
            "sasl.password=<redacted>",
            "# ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD",
            "security.protocol=sasl_ssl",
            "linger.ms=5",
            "# ack mode delivered",
            "acks=all",
            "# bridge default",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        for secret in ["s3cr3t", "hunter2"] {
            assert!(!text.contains(secret), "{secret} shown in\n{text}");
        }
        let line_of = |variable: &str| {
            text.lines()
                .find(|line| line.starts_with(variable))
                .unwrap_or_else(|| panic!("{variable} in\n{text}"))
                .to_owned()
        };
        assert!(line_of("ZEGO_BRIDGE_HTTP_WORKERS").ends_with("# set"));
        assert!(line_of("ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS").ends_with("# default"));
        // The spool's settings do not apply in ack mode delivered.
        assert!(
            line_of("ZEGO_BRIDGE_SPOOL_DIR").ends_with("# not used with this ack mode or cluster")
        );
    }

    #[test]
    fn a_password_from_a_file_says_so() {
        let dir = std::env::temp_dir().join(format!("effective-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let (settings, effective) = Settings::explained(vars(&[
            ("ZEGO_BRIDGE_KAFKA_BROKERS", "k:9092"),
            ("ZEGO_BRIDGE_CALLBACK_SECRETS", "s"),
            (
                "ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE",
                file.to_str().unwrap(),
            ),
        ]))
        .unwrap();
        let text = render(&settings, &effective);
        let line = text
            .lines()
            .find(|line| line.starts_with("sasl.password="))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with("sasl.password=<redacted>"), "{line}");
        assert!(
            line.ends_with("# ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE"),
            "{line}"
        );
        assert!(!text.contains("from-the-file"));
    }

    #[test]
    fn every_setting_of_the_table_is_listed_once() {
        let (settings, effective) = Settings::explained(Vec::new()).unwrap();
        let text = render(&settings, &effective);
        for setting in crate::configuration::SETTINGS {
            let lines = text
                .lines()
                .filter(|line| {
                    line.strip_prefix(setting.variable)
                        .is_some_and(|rest| rest.starts_with('=') || rest.starts_with(' '))
                })
                .count();
            assert_eq!(lines, 1, "{} in\n{text}", setting.variable);
        }
        assert!(
            text.contains("(unset: the embedded in-memory cluster"),
            "{text}"
        );
        // Only the other ack modes' settings and, with no registry URL, the registry's go
        // unread: anything else the service reads without noting it would be missing from the
        // printout.
        let unused: Vec<&str> = effective
            .iter()
            .filter(|setting| setting.origin == Origin::Unused)
            .map(|setting| setting.variable)
            .collect();
        assert_eq!(
            unused,
            [
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME",
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD",
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE",
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE",
                "ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS",
                "ZEGO_BRIDGE_SPOOL_DIR",
                "ZEGO_BRIDGE_SPOOL_MAX_BYTES",
                "ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS"
            ]
        );
    }
}
