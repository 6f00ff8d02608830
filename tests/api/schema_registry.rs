//! With `ZEGO_BRIDGE_SCHEMA_REGISTRY_URL`: the schemas registered under their topics' subjects,
//! every value framed with the id the registry gave, whatever path it takes to Kafka (the live
//! path, the spool, a replay), and never a record published unframed: a registry that refuses a
//! schema, or cannot be reached, stops the start; a record whose schema the registry was not
//! given goes to the dead-letter file.

use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::helpers::*;
use zego_kafka_bridge::event::{catalog, schema};
use zego_kafka_bridge::kafka::DeadLetterFile;
use zego_kafka_bridge::zego::Product;

fn the_schema_of(kind: &str) -> serde_json::Value {
    schema::schema_for(catalog::by_name(kind).expect("a type of the catalog"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_carries_the_id_the_registry_holds_for_its_topics_schema() {
    let registry = registry_url();
    let app = spawn_app_with(&[("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &registry)]).await;
    let accepted = post_parallel(&app.callbacks_url, 0..20, 5).await;
    assert_eq!(accepted.len(), 20);
    let topic = app.topic("mix.started");
    let (id, registered) = latest_schema(&format!("{topic}-value")).await;
    assert_eq!(
        registered,
        the_schema_of("mix.started"),
        "the registry holds the schema of the type under its topic's subject"
    );
    let records = consume(&topic, 20, Duration::from_secs(15)).await;
    assert_eq!(seqs(&records), accepted);
    for record in &records {
        assert_eq!(record.schema_id, Some(id), "{record:?}");
        assert_matches_schema(&record.value);
    }
    // Every type of the products served has its subject, each under its own topic.
    for kind in catalog::ALL.iter() {
        let subject = format!("{}-value", app.topic(kind.name));
        let (_, registered) = latest_schema(&subject).await;
        assert_eq!(registered, schema::schema_for(kind), "{subject}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_the_registry_finds_incompatible_stops_the_start() {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    // Another producer owns the subject, with a closed schema in which `room_id` is a number:
    // the bridge's schema is incompatible with it under the registry's default (BACKWARD).
    let subject = format!("{prefix}.room.closed-value");
    register_schema(
        &subject,
        &serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {"room_id": {"type": "integer"}},
            "required": ["room_id"],
        }),
    )
    .await;
    let registry = registry_url();
    let started = try_spawn_app_on(
        &prefix,
        &brokers(),
        &[("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &registry)],
    )
    .await;
    let error = started.err().expect("the start is refused").to_string();
    assert!(
        error.contains("incompatible") && error.contains(&subject) && error.contains("room.closed"),
        "{error}"
    );
    let (_, latest) = latest_schema(&subject).await;
    assert_ne!(
        latest,
        the_schema_of("room.closed"),
        "nothing was registered over it"
    );
}

/// The registry is away for longer than the start waits: the start fails with the reason, and
/// meanwhile nothing listens (Kubernetes sees the pod not ready, ZEGO's retries go to the
/// others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_stops_the_start_after_half_a_minute() {
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let started = Instant::now();
    let result = try_spawn_app_on(
        &prefix,
        &brokers(),
        &[("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &nobody)],
    )
    .await;
    let error = result.err().expect("the start fails").to_string();
    assert!(
        error.contains("cannot be reached") && error.contains(&nobody),
        "{error}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(25),
        "it waited for the registry: {:?}",
        started.elapsed()
    );
}

/// A registry reached as companies expose theirs: over HTTPS with a certificate of their own CA,
/// behind basic authentication. With the CA file and the credentials (the password from a
/// file) the bridge registers and frames; without the CA it stops at once naming the setting
/// (a certificate does not become trusted by waiting); with a wrong password, at once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_behind_tls_and_basic_auth_is_reached_with_the_ca_file_and_the_credentials() {
    let gateway = RegistryGateway::start("bridge", "s3cret:with=odd,chars");
    let password = scratch_file("registry-password");
    std::fs::write(&password, "s3cret:with=odd,chars\n").unwrap();
    let wrong = scratch_file("wrong-password");
    std::fs::write(&wrong, "not-it").unwrap();
    let ca = gateway.ca.to_str().unwrap();
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    let settings = |password: &std::path::Path, ca: Option<&str>| {
        let mut settings = vec![
            ("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", gateway.url.clone()),
            ("ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME", "bridge".to_owned()),
            (
                "ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE",
                password.to_str().unwrap().to_owned(),
            ),
            ("ZEGO_BRIDGE_PRODUCTS", "rtc".to_owned()),
        ];
        if let Some(ca) = ca {
            settings.push(("ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE", ca.to_owned()));
        }
        settings
    };
    let start = |settings: Vec<(&'static str, String)>| {
        let prefix = prefix.clone();
        async move {
            let vars: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let started = Instant::now();
            let result = try_spawn_app_on(&prefix, &brokers(), &vars).await;
            (result, started.elapsed())
        }
    };

    let (untrusted, waited) = start(settings(&password, None)).await;
    let error = untrusted
        .err()
        .expect("an untrusted certificate stops the start")
        .to_string();
    assert!(
        error.contains("certificate") && error.contains("ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE"),
        "{error}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "at once, not after the retries: {waited:?}"
    );

    let (refused, waited) = start(settings(&wrong, Some(ca))).await;
    let error = refused
        .err()
        .expect("a wrong password stops the start")
        .to_string();
    assert!(
        error.contains("refuses the bridge's credentials (HTTP 401)"),
        "{error}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    let (app, _) = start(settings(&password, Some(ca))).await;
    let app = app.expect("with the CA file and the credentials the bridge starts");
    let accepted = post_parallel(&app.callbacks_url, 0..10, 5).await;
    assert_eq!(accepted.len(), 10);
    let topic = app.topic("mix.started");
    let (id, registered) = latest_schema(&format!("{topic}-value")).await;
    assert_eq!(
        registered,
        the_schema_of("mix.started"),
        "registered through the gateway"
    );
    let records = consume(&topic, 10, Duration::from_secs(15)).await;
    assert_eq!(seqs(&records), accepted);
    assert!(records.iter().all(|record| record.schema_id == Some(id)));
    app.stop().await;
}

/// Records spooled by a bridge without a registry (or by the previous version) are framed when
/// a bridge with one drains them; a spooled record of a product the new bridge no longer serves,
/// whose schema it did not register, is dead-lettered rather than published unframed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_records_are_framed_when_drained_and_never_published_unframed() {
    let prefix = unique_prefix();
    create_all_topics(&prefix).await;
    let dir = std::env::temp_dir().join(format!("zkb-spool-{prefix}"));
    let dead = scratch_file("dead.jsonl");
    let spooled = [
        ("ZEGO_BRIDGE_ACK_MODE", "spooled"),
        ("ZEGO_BRIDGE_SPOOL_DIR", dir.to_str().unwrap()),
        ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
        ("ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS", "0"),
        ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "500"),
    ];
    // No broker answers: everything stays in the spool.
    let away = format!("127.0.0.1:{}", free_port());
    let first = spawn_app_on(&prefix, &away, &spooled).await;
    let accepted = post_parallel(&first.callbacks_url, 0..30, 5).await;
    assert_eq!(accepted.len(), 30);
    let zim = first
        .post_signed_to(
            Product::Zim,
            r#"{"event":"room_create","appid":"1","room_id":"r1","operator_account":"u","room_name":"r","attributes":[],"timestamp":1,"nonce":"1","signature":"s"}"#,
        )
        .await;
    assert_eq!(zim.status, 200, "{:?}", zim.body);
    assert_eq!(first.stop().await.left_in_spool, 31);

    let registry = registry_url();
    let mut second_settings = spooled.to_vec();
    second_settings.push(("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &registry));
    second_settings.push(("ZEGO_BRIDGE_PRODUCTS", "rtc"));
    let second = spawn_app_on(&prefix, &brokers(), &second_settings).await;
    let topic = second.topic("mix.started");
    let records = consume(&topic, 30, Duration::from_secs(15)).await;
    assert_eq!(
        seqs(&records),
        accepted,
        "every spooled event reached Kafka"
    );
    let (id, _) = latest_schema(&format!("{topic}-value")).await;
    assert!(
        records.iter().all(|record| record.schema_id == Some(id)),
        "every one framed with {id}: {:?}",
        records
            .iter()
            .map(|record| record.schema_id)
            .collect::<Vec<_>>()
    );
    let letters = wait_for_letters(&dead, 1, Duration::from_secs(10)).await;
    let letter = &letters[0];
    assert_eq!(letter.topic, format!("{prefix}.zim.room.created"));
    assert!(letter.error.contains("holds no schema"), "{}", letter.error);
    let event: serde_json::Value = serde_json::from_str(letter.event.get()).unwrap();
    assert_eq!(event["room_id"], "r1", "the letter keeps the event's JSON");
    assert!(
        consume(
            &format!("{prefix}.zim.room.created"),
            1,
            Duration::from_secs(2)
        )
        .await
        .is_empty(),
        "nothing unframed was published"
    );
    assert_eq!(second.stop().await.left_in_spool, 0);
}

/// A framed record Kafka refuses for good is dead-lettered as JSON (the framing is the wire's,
/// not the event's), and `replay` frames it again with the registry's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_keep_the_json_and_replay_frames_it_again() {
    let prefix = unique_prefix();
    let cluster = mock_cluster(&prefix);
    let dead = scratch_file("dead.jsonl");
    let registry = registry_url();
    let app = spawn_app_on(
        &prefix,
        &cluster.bootstrap_servers(),
        &[
            ("ZEGO_BRIDGE_DEAD_LETTER_PATH", dead.to_str().unwrap()),
            ("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &registry),
            ("ZEGO_BRIDGE_PRODUCTS", "rtc"),
        ],
    )
    .await;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
    );
    assert_eq!(app.post_signed(&mix_stop(7)).await.status, 200);
    let letters = wait_for_letters(&dead, 1, Duration::from_secs(10)).await;
    let event: serde_json::Value = serde_json::from_str(letters[0].event.get())
        .expect("the letter's event is the JSON, without the wire format's five bytes");
    assert_eq!(event["seq"], 7);
    app.stop().await;

    let topic = format!("{prefix}.mix.stopped");
    let output = bridge_command()
        .env("ZEGO_BRIDGE_KAFKA_BROKERS", cluster.bootstrap_servers())
        .env("ZEGO_BRIDGE_SCHEMA_REGISTRY_URL", &registry)
        .args(["replay", dead.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && printed.contains("1 published")
            && printed.contains("0 failed and 0 unreadable"),
        "{printed} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (id, _) = latest_schema(&format!("{topic}-value")).await;
    let records = consume_mock(
        &cluster.bootstrap_servers(),
        &topic,
        1,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].schema_id, Some(id));
    assert_eq!(records[0].value["seq"], 7);
}

async fn wait_for_letters(
    path: &std::path::Path,
    count: usize,
    within: Duration,
) -> Vec<zego_kafka_bridge::kafka::DeadLetter> {
    let started = Instant::now();
    loop {
        let letters: Vec<_> = DeadLetterFile::read(path)
            .map(|letters| letters.into_iter().filter_map(Result::ok).collect())
            .unwrap_or_default();
        if letters.len() >= count || started.elapsed() > within {
            assert_eq!(letters.len(), count, "dead letters in {}", path.display());
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
