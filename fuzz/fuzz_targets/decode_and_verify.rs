//! Fuzzes what faces the network: decoding a body as JSON and as a form, reading the common
//! keys, verifying the signature, checking for a reused signature, and normalizing, for the
//! product the body names (every product's catalog is reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zego_kafka_bridge::dedup::RecentCallbacks;
use zego_kafka_bridge::event::normalize;
use zego_kafka_bridge::zego::{
    classify, sniff, CallbackSecrets, CommonFields, Encoding, Product, RawCallback,
};

fuzz_target!(|body: &[u8]| {
    let secrets = CallbackSecrets::parse("fuzz-secret,42=app-secret").expect("valid secrets");
    let recent = RecentCallbacks::new(16, Some(std::time::Duration::from_secs(601)));
    for encoding in [Encoding::Json, Encoding::Form, sniff(body)] {
        let Ok(callback) = RawCallback::decode(body, encoding) else {
            continue;
        };
        let product = classify(&callback.root).unwrap_or(Product::Rtc);
        let Ok(common) = CommonFields::read_for(&callback.root, product) else {
            continue;
        };
        let _ = common.verify(secrets.for_product(product));
        let event = normalize(&callback, &common, product, 0);
        let _ = recent.check_signature(
            &common.timestamp_text,
            &common.nonce,
            &common.signature,
            event.id,
        );
        let json = event.to_json();
        assert!(
            serde_json::from_slice::<serde_json::Value>(&json).is_ok(),
            "an event is valid JSON"
        );
    }
});
