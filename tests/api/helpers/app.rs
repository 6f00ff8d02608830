//! The application in-process on port 0, posting to it, and what it answers.

use super::*;

pub const SECRET: &str = "test-secret";
pub const APP_SECRET: &str = "app-4242-secret";

pub struct TestApp {
    pub callbacks_url: String,
    pub admin_url: String,
    pub prefix: String,
    pub client: reqwest::Client,
    shutdown: ShutdownHandle,
    task: Option<JoinHandle<std::io::Result<ShutdownReport>>>,
}

/// Starts the bridge on port 0 with every topic created, the test secrets and `extra` settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let prefix = unique_prefix();
    create_topics(&prefix).await;
    spawn_app_on(&prefix, &brokers(), extra).await
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the bridge with the topics of every product's event types.
pub async fn spawn_products_app_with(extra: &[(&str, &str)]) -> TestApp {
    let prefix = unique_prefix();
    create_all_topics(&prefix).await;
    spawn_app_on(&prefix, &brokers(), extra).await
}

pub async fn spawn_app_on(prefix: &str, brokers: &str, extra: &[(&str, &str)]) -> TestApp {
    try_spawn_app_on(prefix, brokers, extra)
        .await
        .expect("application starts")
}

/// [`spawn_app_on`], for the tests of what stops a start.
pub async fn try_spawn_app_on(
    prefix: &str,
    brokers: &str,
    extra: &[(&str, &str)],
) -> Result<TestApp, StartupError> {
    let mut vars: HashMap<String, String> = [
        ("ZEGO_BRIDGE_LISTEN_ADDR", "127.0.0.1:0"),
        ("ZEGO_BRIDGE_ADMIN_ADDR", "127.0.0.1:0"),
        ("ZEGO_BRIDGE_KAFKA_BROKERS", brokers),
        (
            "ZEGO_BRIDGE_CALLBACK_SECRETS",
            &format!("{SECRET},4242={APP_SECRET}"),
        ),
        ("ZEGO_BRIDGE_TOPIC_PREFIX", prefix),
        ("ZEGO_BRIDGE_HTTP_WORKERS", "2"),
        ("ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS", "5000"),
        // Nothing scrapes these bridges: a stop that leaves events undelivered would wait the
        // whole default for a scrape. The wait itself is tested on the real binary.
        ("ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS", "0"),
        // Never the default, which is relative to the working directory: the repository.
        (
            "ZEGO_BRIDGE_DEAD_LETTER_PATH",
            scratch_file("dead-letter.jsonl").to_str().unwrap(),
        ),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    for (name, value) in extra {
        vars.insert(name.to_string(), value.to_string());
    }
    init_logs();
    let settings = Settings::from_vars(vars).expect("valid test settings");
    let application = Application::build(settings).await?;
    let callbacks_url = format!(
        "http://127.0.0.1:{}/v1/callbacks",
        application.public_port()
    );
    let admin_url = format!("http://127.0.0.1:{}", application.admin_port());
    let shutdown = application.shutdown_handle();
    let task = tokio::spawn(application.run_until_stopped());
    Ok(TestApp {
        callbacks_url,
        admin_url,
        prefix: prefix.to_owned(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap(),
        shutdown,
        task: Some(task),
    })
}

fn init_logs() {
    // Logs help when a test fails; `TEST_LOG=1` shows them.
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").try_init();
    }
}

/// An HTTP answer: status, headers of interest, parsed JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Json,
}

impl TestApp {
    /// `host:port` of the public listener, for raw sockets.
    pub fn public_address(&self) -> String {
        self.callbacks_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1/callbacks")
            .to_owned()
    }

    pub fn topic(&self, kind: &str) -> String {
        format!("{}.{kind}", self.prefix)
    }

    pub async fn post_raw(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self.client.post(&self.callbacks_url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        answer(request.send().await.expect("request sent")).await
    }

    pub async fn post(&self, callback: &SignedCallback) -> Answer {
        self.post_raw(Some(callback.content_type), callback.body.clone())
            .await
    }

    /// Where `product`'s console would send its callbacks.
    pub fn url_for(&self, product: Product) -> String {
        sender::url_for(&self.callbacks_url, product)
    }

    /// Posts a callback to `product`'s path.
    pub async fn post_to(&self, product: Product, callback: &SignedCallback) -> Answer {
        let response = self
            .client
            .post(self.url_for(product))
            .header("content-type", callback.content_type)
            .body(callback.body.clone())
            .send()
            .await
            .expect("request sent");
        answer(response).await
    }

    /// Signs `body` with the shared secret and posts it to `product`'s path.
    pub async fn post_signed_to(&self, product: Product, body: &str) -> Answer {
        self.post_to(product, &sign(body, SECRET)).await
    }

    /// Signs `body` with the shared secret, a fresh nonce and the current time, and posts it.
    pub async fn post_signed(&self, body: &str) -> Answer {
        self.post(&sign(body, SECRET)).await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.admin_url))
            .send()
            .await
            .expect("admin request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// Polls `/readyz` until it answers `status`; panics with its last answer after `limit`.
    pub async fn wait_for_readiness(&self, status: u16, limit: Duration) {
        let since = std::time::Instant::now();
        loop {
            let (answered, body) = self.get("/readyz").await;
            if answered == status {
                return;
            }
            assert!(
                since.elapsed() < limit,
                "/readyz still answers {answered} (not {status}) after {limit:?}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Shuts the bridge down as SIGTERM would and returns its report.
    pub async fn stop(mut self) -> ShutdownReport {
        self.shutdown.shutdown();
        self.task
            .take()
            .unwrap()
            .await
            .expect("application task")
            .expect("clean shutdown")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.shutdown.shutdown();
        }
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is not JSON: {text:?}"));
    Answer {
        status,
        retry_after,
        body,
    }
}

pub fn sign(body: &str, secret: &str) -> SignedCallback {
    let nonce = sender::random_nonce();
    sender::sign_callback(
        body,
        &Signing {
            nonce: &nonce,
            ..Signing::now(secret)
        },
    )
    .expect("signable")
}

/// Signs `body` with `secret` at `timestamp` (Unix seconds) with `nonce`.
pub fn sign_at(body: &str, secret: &str, timestamp: i64, nonce: &str) -> SignedCallback {
    sender::sign_callback(
        body,
        &Signing {
            timestamp,
            nonce,
            ..Signing::now(secret)
        },
    )
    .expect("signable")
}

/// The bridge's clock now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() as i64)
}

/// The committed JSON Schema of an event type, from `schemas/`.
pub fn schema_validator(kind: &str) -> jsonschema::Validator {
    let path = format!("{}/schemas/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
    let schema: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("schema compiles")
}

pub fn assert_matches_schema(value: &Json) {
    let kind = value["type"].as_str().expect("a type");
    let validator = schema_validator(kind);
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|err| err.to_string())
        .collect();
    assert!(errors.is_empty(), "{kind}: {errors:?}\n{value:#}");
}

/// The value of one series (`name`, with its labels as exported) in a `/metrics` text.
pub fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{name} is not exported:\n{metrics}"))
}
