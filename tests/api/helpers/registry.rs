//! The schema registry for the tests: a real one with the Confluent-compatible API, started by
//! `scripts/test`, which sets `ZEGO_BRIDGE_TEST_SCHEMA_REGISTRY`.

use super::*;

pub fn registry_url() -> String {
    std::env::var("ZEGO_BRIDGE_TEST_SCHEMA_REGISTRY").unwrap_or_else(|_| {
        panic!(
            "ZEGO_BRIDGE_TEST_SCHEMA_REGISTRY is not set: the schema registry tests need a \
             registry with the Confluent-compatible API. Run them with `scripts/test`, which \
             starts one."
        )
    })
}

/// `GET {registry}{path}`: the status and the JSON body.
pub async fn registry_get(path: &str) -> (u16, Json) {
    let response = reqwest::get(format!("{}{path}", registry_url()))
        .await
        .expect("the registry answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Json::Null))
}

/// Registers a JSON Schema under `subject` as another producer would; its id.
pub async fn register_schema(subject: &str, schema: &Json) -> u32 {
    let response = reqwest::Client::new()
        .post(format!("{}/subjects/{subject}/versions", registry_url()))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(serde_json::json!({"schemaType": "JSON", "schema": schema.to_string()}).to_string())
        .send()
        .await
        .expect("the registry answers");
    assert_eq!(response.status(), 200, "registering under {subject}");
    let body: Json = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body["id"].as_u64().expect("an id") as u32
}

/// The id of the latest version under `subject`, and that version's schema.
pub async fn latest_schema(subject: &str) -> (u32, Json) {
    let (status, latest) = registry_get(&format!("/subjects/{subject}/versions/latest")).await;
    assert_eq!(status, 200, "{subject}: {latest}");
    let id = latest["id"].as_u64().expect("an id") as u32;
    let (status, by_id) = registry_get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(status, 200, "schema {id}: {by_id}");
    let schema = serde_json::from_str(by_id["schema"].as_str().expect("the schema's text"))
        .expect("a JSON schema");
    (id, schema)
}

/// The test registry behind HTTPS, with a certificate of a CA made for the test, and HTTP basic
/// authentication (`registry_gateway.py`): how a company's registry is usually reached.
pub struct RegistryGateway {
    child: std::process::Child,
    /// `https://localhost:{port}`.
    pub url: String,
    /// The PEM file of the CA that signed the gateway's certificate.
    pub ca: std::path::PathBuf,
}

impl RegistryGateway {
    pub fn start(username: &str, password: &str) -> RegistryGateway {
        use std::io::BufRead;
        let dir = scratch_file("registry-gateway");
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/api/helpers/registry_gateway.py"
            ))
            .args([dir.to_str().unwrap(), &registry_url(), username, password])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the registry gateway");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the gateway says where it listens");
        let listening: Json = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the gateway did not start: {line:?}"));
        RegistryGateway {
            child,
            url: listening["url"].as_str().unwrap().to_owned(),
            ca: listening["ca"].as_str().unwrap().into(),
        }
    }
}

impl Drop for RegistryGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
