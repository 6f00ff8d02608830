//! The HTTP routes mounted on an app of the test's own, over the real pipeline with a fake
//! acknowledger instead of Kafka: HTTP behaviour and the pipeline's promises, without a broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServiceResponse;
use actix_web::{test, web, App};
use async_trait::async_trait;
use serde_json::Value as Json;
use uuid::Uuid;

use zego_kafka_bridge::error::Unavailable;
use zego_kafka_bridge::event::Event;
use zego_kafka_bridge::ingest::{
    Acknowledger, Pipeline, PipelineSettings, Readiness, ShutdownReport,
};
use zego_kafka_bridge::kafka::PublishError;
use zego_kafka_bridge::metrics::Metrics;
use zego_kafka_bridge::routes::{self, BodyLimits, RequestLogging};
use zego_kafka_bridge::sender::SignedCallback;
use zego_kafka_bridge::zego::{CallbackSecrets, Secret};

use crate::helpers::{sign, sign_at, unix_now, SECRET};

/// Takes events into a list, or refuses them while `refusing` is set.
#[derive(Default)]
struct FakeAcknowledger {
    taken: Mutex<Vec<(&'static str, Uuid)>>,
    refusing: AtomicBool,
    not_alive: Mutex<Option<String>>,
}

#[async_trait]
impl Acknowledger for FakeAcknowledger {
    fn mode(&self) -> &'static str {
        "fake"
    }

    async fn acknowledge(&self, event: &Event<'_>, _payload: Vec<u8>) -> Result<(), Unavailable> {
        if self.refusing.load(Ordering::Acquire) {
            return Err(PublishError::QueueFull.into());
        }
        self.taken.lock().unwrap().push((event.kind.name, event.id));
        Ok(())
    }

    /// Takes it even while refusing: that is the point of it.
    async fn take_unrefused(&self, event: &Event<'_>, _payload: Vec<u8>) {
        self.taken.lock().unwrap().push((event.kind.name, event.id));
    }

    fn not_ready_reasons(&self) -> Vec<String> {
        if self.refusing.load(Ordering::Acquire) {
            vec!["the fake refuses".to_owned()]
        } else {
            Vec::new()
        }
    }

    fn liveness_problem(&self) -> Option<String> {
        self.not_alive.lock().unwrap().clone()
    }

    async fn shut_down(&self, _deadline: Instant) -> ShutdownReport {
        ShutdownReport::default()
    }
}

struct Harness {
    fake: Arc<FakeAcknowledger>,
    readiness: Arc<Readiness>,
    pipeline: web::Data<Pipeline>,
    limits: web::Data<BodyLimits>,
    logging: web::Data<RequestLogging>,
    metrics: Arc<Metrics>,
}

impl Harness {
    fn new() -> Self {
        let fake = Arc::new(FakeAcknowledger::default());
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::new(fake.clone()));
        let pipeline = web::Data::new(Pipeline::new(
            PipelineSettings {
                secrets: std::sync::Arc::new(zego_kafka_bridge::secrets::LiveSecrets::new(
                    CallbackSecrets::single(Secret::new(SECRET)),
                )),
                max_clock_skew_secs: 300,
                dedup_capacity: 1000,
                event_sizes: std::sync::Arc::new(zego_kafka_bridge::kafka::EventSizeLimits::new(
                    rdkafka::ClientConfig::new().set("message.max.bytes", "104096"),
                )),
                retry_after_secs: 7,
                zim_verdict: Default::default(),
                products: zego_kafka_bridge::zego::ProductSet::ALL,
            },
            fake.clone(),
            readiness.clone(),
            metrics.clone(),
        ));
        let limits = web::Data::new(BodyLimits::new(65_536, Duration::from_secs(5), 1024 * 1024));
        Harness {
            fake,
            readiness,
            pipeline,
            limits,
            logging: web::Data::new(RequestLogging::new(Vec::new(), false)),
            metrics,
        }
    }

    fn taken(&self) -> Vec<(&'static str, Uuid)> {
        self.fake.taken.lock().unwrap().clone()
    }
}

/// The public routes on an app of the test's own, over the harness's pipeline.
macro_rules! public_app {
    ($harness:expr) => {
        test::init_service(
            App::new()
                .app_data($harness.pipeline.clone())
                .app_data($harness.limits.clone())
                .app_data($harness.logging.clone())
                .configure(routes::configure_public),
        )
        .await
    };
}

/// The admin routes on an app of the test's own.
macro_rules! admin_app {
    ($harness:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::from($harness.readiness.clone()))
                .app_data(web::Data::from($harness.metrics.clone()))
                .configure(routes::configure_admin),
        )
        .await
    };
}

fn post(callback: &SignedCallback) -> test::TestRequest {
    test::TestRequest::post()
        .uri(routes::CALLBACKS_PATH)
        .insert_header(("content-type", callback.content_type))
        .set_payload(callback.body.clone())
}

async fn status_and_json(response: ServiceResponse) -> (u16, Json, Option<String>) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body: Json = test::read_body_json(response).await;
    (status, body, retry_after)
}

const ROOM_CLOSE: &str = r#"{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s","room_id":"r","room_session_id":1,"close_reason":1}"#;

/// ZIM's pre-send check, and a message sent, as the tests post them.
const BEFORE_SEND_MSG: &str = r#"{"event":"before_send_msg","appid":"1","timestamp":1,"nonce":"n","signature":"s","request_id":"r1","msg_id":"m1","from_user_id":"a","conv_id":"b","conv_type":0,"msg_type":1,"msg_body":"hi"}"#;
const SEND_MSG: &str = r#"{"event":"send_msg","appid":"1","timestamp":1,"nonce":"n","signature":"s","msg_id":"m1","conv_type":1,"conv_id":"r"}"#;

#[actix_web::test]
async fn an_accepted_callback_is_handed_over_once_and_its_retry_is_answered_without_a_second() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let first = test::call_service(&app, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    assert_eq!(status_and_json(first).await.0, 200);
    // ZEGO's retry: the same callback with a new nonce, timestamp and signature.
    let retry = test::call_service(&app, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    assert_eq!(status_and_json(retry).await.0, 200);
    let taken = harness.taken();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].0, "room.closed");
    let metrics = harness.metrics.render();
    assert!(
        metrics.contains(r#"zego_bridge_duplicates_total{type="room.closed"} 1"#),
        "{metrics}"
    );
}

/// A callback the acknowledger could not take was never accepted: its retry must not be taken
/// for a duplicate of it, or it would be answered 200 and never published.
#[actix_web::test]
async fn a_refused_callback_is_503_with_retry_after_and_its_retry_is_taken() {
    let harness = Harness::new();
    let app = public_app!(harness);
    harness.fake.refusing.store(true, Ordering::Release);
    let refused = test::call_service(&app, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    let (status, body, retry_after) = status_and_json(refused).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("7"));
    assert!(
        body["message"].as_str().unwrap().contains("queue is full"),
        "{body}"
    );
    assert!(harness.taken().is_empty());

    harness.fake.refusing.store(false, Ordering::Release);
    let retry = test::call_service(&app, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    assert_eq!(status_and_json(retry).await.0, 200);
    assert_eq!(harness.taken().len(), 1, "the retry was taken");
}

#[actix_web::test]
async fn forged_malformed_and_mistyped_callbacks_never_reach_the_acknowledger() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let forged =
        test::call_service(&app, post(&sign(ROOM_CLOSE, "not-the-secret")).to_request()).await;
    assert_eq!(status_and_json(forged).await.0, 401);
    let malformed = test::TestRequest::post()
        .uri(routes::CALLBACKS_PATH)
        .insert_header(("content-type", "application/json"))
        .set_payload("{not json")
        .to_request();
    assert_eq!(
        status_and_json(test::call_service(&app, malformed).await)
            .await
            .0,
        400
    );
    let xml = test::TestRequest::post()
        .uri(routes::CALLBACKS_PATH)
        .insert_header(("content-type", "application/xml"))
        .set_payload(sign(ROOM_CLOSE, SECRET).body)
        .to_request();
    assert_eq!(
        status_and_json(test::call_service(&app, xml).await).await.0,
        415
    );
    let too_large = test::TestRequest::post()
        .uri(routes::CALLBACKS_PATH)
        .insert_header(("content-type", "application/json"))
        .set_payload(vec![b' '; 70_000])
        .to_request();
    assert_eq!(
        status_and_json(test::call_service(&app, too_large).await)
            .await
            .0,
        413
    );
    assert!(harness.taken().is_empty(), "{:?}", harness.taken());
}

#[actix_web::test]
async fn other_methods_and_paths_get_json_answers() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let get = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(routes::CALLBACKS_PATH)
            .to_request(),
    )
    .await;
    assert_eq!(get.headers().get("allow").unwrap(), "POST");
    assert_eq!(status_and_json(get).await.0, 405);
    let elsewhere = test::call_service(
        &app,
        test::TestRequest::post().uri("/callbacks").to_request(),
    )
    .await;
    let (status, body, _) = status_and_json(elsewhere).await;
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("/v1/callbacks"),
        "{body}"
    );
}

#[actix_web::test]
async fn readiness_and_liveness_follow_the_acknowledger_and_shutdown() {
    let harness = Harness::new();
    let admin = admin_app!(harness);
    let public = public_app!(harness);
    let get = |path: &'static str| test::TestRequest::get().uri(path).to_request();

    assert_eq!(
        test::call_service(&admin, get("/readyz")).await.status(),
        200
    );
    harness.fake.refusing.store(true, Ordering::Release);
    let (status, body, _) = status_and_json(test::call_service(&admin, get("/readyz")).await).await;
    assert_eq!(status, 503);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the fake refuses"),
        "{body}"
    );
    let metrics = test::call_and_read_body(&admin, get("/metrics")).await;
    let metrics = String::from_utf8(metrics.to_vec()).unwrap();
    assert!(
        metrics.lines().any(|line| line == "zego_bridge_ready 0"),
        "{metrics}"
    );
    harness.fake.refusing.store(false, Ordering::Release);

    assert_eq!(
        test::call_service(&admin, get("/healthz")).await.status(),
        200
    );
    *harness.fake.not_alive.lock().unwrap() = Some("the disk is gone".to_owned());
    let (status, body, _) =
        status_and_json(test::call_service(&admin, get("/healthz")).await).await;
    assert_eq!(status, 503);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("the disk is gone"),
        "{body}"
    );

    harness.readiness.begin_shutdown();
    assert_eq!(
        test::call_service(&admin, get("/readyz")).await.status(),
        503
    );
    let refused = test::call_service(&public, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    let (status, body, _) = status_and_json(refused).await;
    assert_eq!(status, 503);
    assert!(
        body["message"].as_str().unwrap().contains("shutting down"),
        "{body}"
    );
    assert!(harness.taken().is_empty());
}

fn post_to(path: &str, callback: &SignedCallback) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", callback.content_type))
        .set_payload(callback.body.clone())
}

/// A console given another product's URL shows at once: a 400 that names the right path, and
/// nothing handed over. Each pair is a product's body on another product's path.
#[actix_web::test]
async fn a_body_on_another_products_path_is_refused_naming_the_right_path() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let zim_send = r#"{"event":"send_msg","appid":"1","timestamp":1,"nonce":"n","signature":"s","msg_id":"m","conv_type":1,"conv_id":"r"}"#;
    let zim_room = r#"{"event":"room_create","appid":"1","timestamp":1,"nonce":"n","signature":"s","room_id":"r","operator_account":"u"}"#;
    let agent = r#"{"Event":"ASRResult","AppId":1,"AgentInstanceId":"7","Timestamp":1,"Nonce":"n","Signature":"s"}"#;
    let asr =
        r#"{"Event":"Exception","AppId":1,"TaskId":"7","Timestamp":1,"Nonce":"n","Signature":"s"}"#;
    let player =
        r#"{"EventType":1,"AppID":1,"PlayerId":"p","Timestamp":"1","Nonce":"n","Signature":"s"}"#;
    let human =
        r#"{"EventType":3,"AppId":1,"TaskId":"t","Timestamp":"1","Nonce":"n","Signature":"s"}"#;
    let recording =
        r#"{"event_type":1,"app_id":1,"task_id":"t","timestamp":"1","nonce":"n","signature":"s"}"#;
    let board = r#"{"event":"cvt_finish","appid":1,"timestamp":1,"nonce":"n","signature":"s","data":{"task_id":"t","status":16}}"#;
    for (body, path, right) in [
        (zim_send, "/v1/callbacks", "/v1/callbacks/zim"),
        (zim_room, "/v1/callbacks", "/v1/callbacks/zim"),
        (ROOM_CLOSE, "/v1/callbacks/zim", "/v1/callbacks "),
        (agent, "/v1/callbacks/asr", "/v1/callbacks/ai-agent"),
        (asr, "/v1/callbacks/ai-agent", "/v1/callbacks/asr"),
        (
            player,
            "/v1/callbacks/digital-human",
            "/v1/callbacks/cloud-player",
        ),
        (
            human,
            "/v1/callbacks/cloud-player",
            "/v1/callbacks/digital-human",
        ),
        (
            recording,
            "/v1/callbacks/zim",
            "/v1/callbacks/cloud-recording",
        ),
        (board, "/v1/callbacks", "/v1/callbacks/super-board"),
    ] {
        let response =
            test::call_service(&app, post_to(path, &sign(body, SECRET)).to_request()).await;
        let (status, reply, _) = status_and_json(response).await;
        assert_eq!(status, 400, "{path}: {reply}");
        let message = format!("{} ", reply["message"].as_str().unwrap());
        assert!(
            message.contains(&format!("to {right}")),
            "{path}: {message}"
        );
    }
    assert!(harness.taken().is_empty());
    // Cloud Recording's callbacks were always taken on the RTC path: they still are.
    let response = test::call_service(
        &app,
        post_to("/v1/callbacks", &sign(recording, SECRET)).to_request(),
    )
    .await;
    assert_eq!(status_and_json(response).await.0, 200);
    let response = test::call_service(
        &app,
        post_to(
            "/v1/callbacks/cloud-recording",
            &sign(&recording.replace("\"t\"", "\"t2\""), SECRET),
        )
        .to_request(),
    )
    .await;
    assert_eq!(status_and_json(response).await.0, 200);
    let taken: Vec<&str> = harness.taken().iter().map(|(kind, _)| *kind).collect();
    assert_eq!(taken, ["cloud_recording.status", "cloud_recording.status"]);
}

/// An unknown event on a product's path is that product's: to its own `unrecognized` topic.
#[actix_web::test]
async fn an_unknown_event_on_a_products_path_is_that_products_unrecognized() {
    let harness = Harness::new();
    let app = public_app!(harness);
    for (path, body, kind) in [
        (
            "/v1/callbacks/zim",
            r#"{"event":"msg_revoked","appid":"1","timestamp":1,"nonce":"n","signature":"s"}"#,
            "zim.unrecognized",
        ),
        (
            "/v1/callbacks/ai-agent",
            r#"{"Event":"AgentDreamt","AppId":1,"Timestamp":1,"Nonce":"n","Signature":"s"}"#,
            "ai_agent.unrecognized",
        ),
        (
            "/v1/callbacks/digital-human",
            r#"{"EventType":1,"AppId":1,"TaskId":"t","Timestamp":"1","Nonce":"n","Signature":"s"}"#,
            "digital_human.unrecognized",
        ),
        (
            "/v1/callbacks/cloud-player",
            r#"{"EventType":10007,"AppID":1,"Timestamp":"1","Nonce":"n","Signature":"s"}"#,
            "cloud_player.unrecognized",
        ),
        (
            "/v1/callbacks",
            r#"{"event":"room_user_count","appid":1,"timestamp":1,"nonce":"n","signature":"s"}"#,
            "unrecognized",
        ),
    ] {
        let response =
            test::call_service(&app, post_to(path, &sign(body, SECRET)).to_request()).await;
        let (status, reply, _) = status_and_json(response).await;
        assert_eq!(status, 200, "{path}: {reply}");
        assert_eq!(harness.taken().last().unwrap().0, kind, "{path}");
    }
}

/// MiniGameEngine's signature cannot be pinned down from its pages: its path, and its body
/// anywhere, get a 501 that says why; an unknown product gets a 404 listing the paths.
#[actix_web::test]
async fn minigame_is_refused_with_the_reason_and_unknown_paths_list_the_products() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let minigame = zego_kafka_bridge::samples::ALL
        .iter()
        .find(|sample| sample.file == "products/mini_game.report_game_info.json")
        .unwrap()
        .body;
    for path in [
        "/v1/callbacks/minigame",
        "/v1/callbacks",
        "/v1/callbacks/zim",
    ] {
        let request = test::TestRequest::post()
            .uri(path)
            .insert_header(("content-type", "application/json"))
            .set_payload(minigame)
            .to_request();
        let (status, reply, _) = status_and_json(test::call_service(&app, request).await).await;
        assert_eq!(status, 501, "{path}: {reply}");
        assert!(
            reply["message"].as_str().unwrap().contains("signature"),
            "{reply}"
        );
    }
    let request = test::TestRequest::post()
        .uri("/v1/callbacks/chat")
        .set_payload("{}")
        .to_request();
    let (status, reply, _) = status_and_json(test::call_service(&app, request).await).await;
    assert_eq!(status, 404);
    let message = reply["message"].as_str().unwrap();
    for path in [
        "/v1/callbacks (",
        "/v1/callbacks/zim",
        "/v1/callbacks/ai-agent",
        "/v1/callbacks/super-board",
    ] {
        assert!(message.contains(path), "{message}");
    }
    assert!(!message.contains("minigame"), "{message}");
    assert!(harness.taken().is_empty());
}

/// ZEGO signs `timestamp` and `nonce` joined with no separator: digits moved from the nonce to
/// the end of a seconds timestamp make a millisecond timestamp of the same instant with the same
/// signature. A captured callback respelled so, on a forged body, is the same signature used
/// again: refused, not published.
#[actix_web::test]
async fn a_signature_respelled_by_moving_digits_is_still_used_once() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let now = unix_now();
    let send = r#"{"event":"send_msg","appid":"1","timestamp":1,"nonce":"n","signature":"s","msg_id":"m1","from_user_id":"a","conv_type":1,"conv_id":"r","msg_body":"hello"}"#;
    // The nonce starts with a digit above the timestamp's first, so the timestamp sorts first
    // both before and after the move.
    let captured = sign_at(send, SECRET, now, "9123");
    let response =
        test::call_service(&app, post_to("/v1/callbacks/zim", &captured).to_request()).await;
    assert_eq!(response.status(), 200);
    let mut forged: Json = serde_json::from_slice(&captured.body).unwrap();
    forged["timestamp"] = serde_json::json!(format!("{now}912").parse::<i64>().unwrap());
    forged["nonce"] = serde_json::json!("3");
    forged["msg_id"] = serde_json::json!("m2");
    forged["msg_body"] = serde_json::json!("send money to account 1234");
    let forged = SignedCallback {
        body: forged.to_string().into_bytes(),
        ..captured.clone()
    };
    let response =
        test::call_service(&app, post_to("/v1/callbacks/zim", &forged).to_request()).await;
    let (status, body, _) = status_and_json(response).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    assert_eq!(harness.taken().len(), 1, "only the genuine one");
    let rendered = harness.metrics.render();
    assert!(
        rendered.contains(r#"zego_bridge_signature_refusals_total{reason="replayed_signature"} 1"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"zego_bridge_signature_reuses_total{spelling="respelled"} 1"#),
        "{rendered}"
    );
}

/// The clock offset is observed for every callback whose signature verified, whatever became
/// of it, and for none that did not: a drift towards the skew limit shows before it refuses.
#[actix_web::test]
async fn the_clock_offset_of_verified_callbacks_is_measured() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let now = unix_now();
    let signed_at =
        |timestamp: i64, secret: &str, nonce: &str| sign_at(ROOM_CLOSE, secret, timestamp, nonce);
    // 200 s behind: taken; 400 s behind: refused for skew, but measured; forged: not measured.
    for (callback, status) in [
        (signed_at(now - 200, SECRET, "1"), 200),
        (signed_at(now - 400, SECRET, "2"), 401),
        (signed_at(now - 900, "not-the-secret", "3"), 401),
    ] {
        let response = test::call_service(&app, post(&callback).to_request()).await;
        assert_eq!(response.status(), status);
    }
    let rendered = harness.metrics.render();
    let series = |name: &str| {
        rendered
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {rendered}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert_eq!(
        series(r#"zego_bridge_callback_clock_offset_seconds_count{product="rtc"}"#),
        2.0
    );
    let sum = series(r#"zego_bridge_callback_clock_offset_seconds_sum{product="rtc"}"#);
    assert!((595.0..610.0).contains(&sum), "{sum}");
    assert_eq!(
        series(r#"zego_bridge_callback_clock_offset_seconds_bucket{product="rtc",le="180"}"#),
        0.0
    );
    assert_eq!(
        series(r#"zego_bridge_callback_clock_offset_seconds_bucket{product="rtc",le="240"}"#),
        1.0
    );
}

/// A ZIM message may be 32 KB, and escaped it may be three times that: its `before_send_msg`
/// is taken whole (a 413 would be a message not sent).
#[actix_web::test]
async fn a_long_zim_message_gets_its_verdict() {
    let harness = Harness::new();
    let app = public_app!(harness);
    // A control character stays escaped when the body is signed and sent: six bytes each.
    let long = "\\u0007".repeat(32 * 1024 / 2);
    let check = format!(
        r#"{{"event":"before_send_msg","appid":"1","timestamp":1,"nonce":"n","signature":"s","request_id":"r1","msg_id":"m1","from_user_id":"a","conv_id":"b","conv_type":0,"msg_type":1,"msg_body":"{long}"}}"#
    );
    let signed = sign(&check, SECRET);
    assert!(signed.body.len() > 96_000, "{}", signed.body.len());
    let response =
        test::call_service(&app, post_to("/v1/callbacks/zim", &signed).to_request()).await;
    let (status, reply, _) = status_and_json(response).await;
    assert_eq!((status, reply), (200, serde_json::json!({"result": 0})));
    assert_eq!(harness.taken().len(), 1);
}

/// RTC's recording callback is answered `1`: its older page counts any other answer as a
/// failure ("A response \"1\" means that the request has completed successfully"); the
/// current one takes any 2xx. The others keep the JSON reply.
#[actix_web::test]
async fn the_recording_callback_is_answered_1() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let record = r#"{"event":"record","appid":"1","timestamp":1,"nonce":"n","signature":"s","stream_alias":"aaaa","replay_url":"u","begin_time":"1481597358","end_time":"1481597358"}"#;
    let response = test::call_service(&app, post(&sign(record, SECRET)).to_request()).await;
    assert_eq!(response.status(), 200);
    let body = test::read_body(response).await;
    assert_eq!(&body[..], b"1");
    assert_eq!(harness.taken()[0].0, "media.recorded");
    let response = test::call_service(&app, post(&sign(ROOM_CLOSE, SECRET)).to_request()).await;
    let (status, reply, _) = status_and_json(response).await;
    assert_eq!(
        (status, &reply["message"]),
        (200, &serde_json::json!("accepted"))
    );
}

/// AI Agent's `UserAudioData` carries "the first 1–1.5 s" of a round's audio, base64 PCM at
/// 16 kHz: 1.6 s of 16-bit mono is over the 64 KiB of every other path, and is taken on AI
/// Agent's; the same size on RTC's path still gets 413.
#[actix_web::test]
async fn ai_agent_audio_of_a_round_fits_its_body_limit() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let audio = "A".repeat((16_000 * 2 * 16 / 10) / 3 * 4);
    let body = format!(
        r#"{{"AppId":1,"AgentInstanceId":"i1","AgentUserId":"a","RoomId":"r","Sequence":7,"Event":"UserAudioData","Nonce":"n","Signature":"s","Timestamp":1745502313000,"Data":{{"UserId":"u","Round":1,"SampleRate":16000,"Format":"pcm","Audio":"{audio}"}}}}"#
    );
    assert!(body.len() > 65_536, "{}", body.len());
    let response = test::call_service(
        &app,
        post_to("/v1/callbacks/ai-agent", &sign(&body, SECRET)).to_request(),
    )
    .await;
    assert_eq!(status_and_json(response).await.0, 200);
    assert_eq!(harness.taken()[0].0, "ai_agent.user.audio");
    let padded = format!(
        r#"{{"event":"room_close","appid":"1","timestamp":1,"nonce":"n","signature":"s","room_id":"r","x":"{audio}"}}"#
    );
    let response = test::call_service(&app, post(&sign(&padded, SECRET)).to_request()).await;
    assert_eq!(status_and_json(response).await.0, 413);
}

/// A graceful shutdown refuses callbacks with 503 so that ZEGO retries them on another pod, but
/// not `before_send_msg`: its sender does not wait for another pod, and by default a message
/// whose check fails is not sent. It gets its verdict, and its event is handed over.
#[actix_web::test]
async fn before_send_msg_gets_the_verdict_while_shutting_down() {
    let harness = Harness::new();
    let app = public_app!(harness);
    harness.readiness.begin_shutdown();
    let check = BEFORE_SEND_MSG;
    let response = test::call_service(
        &app,
        post_to("/v1/callbacks/zim", &sign(check, SECRET)).to_request(),
    )
    .await;
    let (status, reply, _) = status_and_json(response).await;
    assert_eq!((status, reply), (200, serde_json::json!({"result": 0})));
    let taken = harness.taken();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].0, "zim.message.before_send");
    let send = SEND_MSG;
    let response = test::call_service(
        &app,
        post_to("/v1/callbacks/zim", &sign(send, SECRET)).to_request(),
    )
    .await;
    assert_eq!(
        status_and_json(response).await.0,
        503,
        "other ZIM callbacks"
    );
    assert_eq!(harness.taken().len(), 1);
}

/// A `before_send_msg` under a signature that came with another callback first, spelled the
/// same (ZEGO's nonce repeating within a second, or a replay): its verdict, not a 503 that
/// would keep a message from being sent; its event is not handed over (it may be forged).
#[actix_web::test]
async fn before_send_msg_under_a_reused_signature_gets_its_verdict_unpublished() {
    let harness = Harness::new();
    let app = public_app!(harness);
    let now = unix_now();
    let first = sign_at(BEFORE_SEND_MSG, SECRET, now, "123456");
    let second = sign_at(
        &BEFORE_SEND_MSG.replace(r#""msg_id":"m1""#, r#""msg_id":"m2""#),
        SECRET,
        now,
        "123456",
    );
    for callback in [&first, &second] {
        let response =
            test::call_service(&app, post_to("/v1/callbacks/zim", callback).to_request()).await;
        let (status, reply, _) = status_and_json(response).await;
        assert_eq!((status, reply), (200, serde_json::json!({"result": 0})));
    }
    assert_eq!(harness.taken().len(), 1, "only the first is handed over");
    assert!(harness
        .metrics
        .render()
        .contains(r#"zego_bridge_signature_reuses_total{spelling="same"} 1"#));
}

/// `before_send_msg` is answered with the verdict, even while the output refuses everything
/// else, and its retry gets the same verdict without a second hand-over.
#[actix_web::test]
async fn before_send_msg_gets_the_verdict_even_while_the_output_refuses() {
    let harness = Harness::new();
    let app = public_app!(harness);
    harness.fake.refusing.store(true, Ordering::Release);
    let check = BEFORE_SEND_MSG;
    for _ in 0..2 {
        let response = test::call_service(
            &app,
            post_to("/v1/callbacks/zim", &sign(check, SECRET)).to_request(),
        )
        .await;
        let (status, reply, _) = status_and_json(response).await;
        assert_eq!((status, reply), (200, serde_json::json!({"result": 0})));
    }
    let taken = harness.taken();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].0, "zim.message.before_send");
    // A bad signature is refused as for any callback: ZIM then applies its own default.
    let forged = sign(check, "not-the-secret");
    let response =
        test::call_service(&app, post_to("/v1/callbacks/zim", &forged).to_request()).await;
    assert_eq!(status_and_json(response).await.0, 401);
    let send = SEND_MSG;
    let response = test::call_service(
        &app,
        post_to("/v1/callbacks/zim", &sign(send, SECRET)).to_request(),
    )
    .await;
    assert_eq!(
        status_and_json(response).await.0,
        503,
        "other callbacks are refused"
    );
}
