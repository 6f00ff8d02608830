//! `send`'s retry schedule, against a server that fails before it accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use zego_kafka_bridge::sender;

use crate::helpers::sign;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_the_same_signed_body_until_accepted() {
    let bodies = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let attempts = Arc::new(AtomicUsize::new(0));
    let (server_bodies, server_attempts) = (bodies.clone(), attempts.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (bodies, attempts) = (server_bodies.clone(), server_attempts.clone());
        App::new().default_service(web::to(move |body: web::Bytes| {
            let (bodies, attempts) = (bodies.clone(), attempts.clone());
            async move {
                bodies.lock().unwrap().push(body.to_vec());
                // Fails twice, then accepts.
                if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    HttpResponse::ServiceUnavailable().finish()
                } else {
                    HttpResponse::Ok().body(r#"{"code":200,"message":"accepted"}"#)
                }
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    let callback = sign(
        r#"{"event":"room_close","appid":1,"timestamp":1,"nonce":"n","signature":"s"}"#,
        "k",
    );
    let delays = [Duration::from_millis(50); 5];
    let mut retries = Vec::new();
    let delivery = sender::post(
        &reqwest::Client::new(),
        &url,
        &callback,
        &delays[..],
        |failed, delay| {
            retries.push((failed.status, delay));
        },
    )
    .await;
    assert!(delivery.succeeded(), "{delivery:?}");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(
        retries,
        vec![(Some(503), delays[0]), (Some(503), delays[1])]
    );
    let bodies = bodies.lock().unwrap().clone();
    assert!(
        bodies.iter().all(|body| *body == callback.body),
        "every attempt sends the same signed body"
    );

    // Without a schedule, one attempt only.
    attempts.store(0, Ordering::SeqCst);
    let delivery = sender::post(&reqwest::Client::new(), &url, &callback, &[][..], |_, _| {}).await;
    assert_eq!((delivery.status, delivery.attempts), (Some(503), 1));
    assert_eq!(
        sender::ZEGO_RETRY_DELAYS
            .iter()
            .map(Duration::as_secs)
            .collect::<Vec<_>>(),
        [2, 4, 8, 16, 32]
    );
    handle.stop(true).await;
}
