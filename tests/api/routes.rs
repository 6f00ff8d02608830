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

use crate::helpers::{sign, SECRET};

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
                max_event_bytes: 100_000,
                retry_after_secs: 7,
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
