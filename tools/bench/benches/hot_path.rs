//! The per-callback hot path: decode, classify, verify, normalize, encode. `cargo bench`
//! shows a regression in review; `zego-bridge-bench hot-path` (a phase of `scripts/bench`)
//! gives the same work as a ratio to a fixed reference workload, which compares across
//! machines and days; docs/BENCHMARKS.md has the end-to-end figures.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zego_bridge_bench::CallbackMix;
use zego_kafka_bridge::event::normalize;
use zego_kafka_bridge::kafka::header_pairs;
use zego_kafka_bridge::zego::{
    classify, sniff, CallbackSecrets, CommonFields, Product, RawCallback,
};

// The allocator the shipped binary uses, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn hot_path(criterion: &mut Criterion) {
    let mix = CallbackMix::new("secret", 0);
    let secrets = CallbackSecrets::parse("secret").unwrap();
    // One callback of each kind of the mix, as the load tool sends them.
    let bodies: Vec<String> = (0..64).map(|seq| mix.callback(seq).0).collect();
    let mut group = criterion.benchmark_group("callback");
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function(
        "decode+classify+verify+normalize+encode (64 mixed)",
        |bench| {
            bench.iter(|| {
                for body in &bodies {
                    let callback =
                        RawCallback::decode(body.as_bytes(), sniff(body.as_bytes())).unwrap();
                    let product = classify(&callback.root).unwrap_or(Product::Rtc);
                    let common = CommonFields::read_for(&callback.root, product).unwrap();
                    common.verify(secrets.for_product(product)).unwrap();
                    let event = normalize(&callback, &common, product, 0);
                    std::hint::black_box((event.to_json(), header_pairs(&event)));
                }
            })
        },
    );
    group.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
