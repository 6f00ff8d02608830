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
