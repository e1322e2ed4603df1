//! verify + parse + route + delivery key, the receiver's CPU work per webhook, for 2 KB
//! and 10 KB bodies. Run: `cargo bench -p nphooks-core --bench verify_parse_route`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nphooks_core::delivery::DeliveryKey;
use nphooks_core::routing::RoutingTable;
use nphooks_core::secret::Secret;
use nphooks_core::signature::{WebhookAuth, sign};
use nphooks_samples::call_ended_data;
use serde_json::json;

/// A demo-request body of exactly `size` bytes (its transcript padded with ASCII text).
fn body_of_size(size: usize) -> String {
    let mut body = json!({"event": "call.ended", "timestamp": "2026-11-26T15:30:00Z", "data": call_ended_data("demo_request")});
    let base = body.to_string().len();
    let transcript = body["data"]["transcript"].as_str().unwrap_or_default();
    let padding: String = "Caller: we also need after-hours routing. "
        .chars()
        .cycle()
        .take(size - base)
        .collect();
    body["data"]["transcript"] = json!(format!("{transcript}{padding}"));
    let text = body.to_string();
    assert_eq!(text.len(), size);
    text
}

fn bench(c: &mut Criterion) {
    let secret = "whsec_bench";
    let auth = WebhookAuth::new(
        vec![Secret::new("whsec_previous"), Secret::new(secret)],
        Some(&Secret::new("np_live_bench")),
    );
    let routes = RoutingTable::default_table();
    let mut group = c.benchmark_group("verify_parse_route");
    for size in [2 * 1024, 10 * 1024] {
        let body = body_of_size(size);
        let signature = sign(secret, body.as_bytes());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{}KB", size / 1024), |b| {
            b.iter(|| {
                let webhook = auth
                    .verify(
                        Some(signature.as_bytes()),
                        Some(b"Bearer np_live_bench"),
                        black_box(body.as_bytes()),
                    )
                    .expect("signed")
                    .parse()
                    .expect("valid");
                let route = routes.route_for(&webhook);
                (DeliveryKey::for_webhook(&webhook), route)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
