//! What the edge adds to every request before a handler runs: the rate limiter's `admit` when no
//! limit is hit (against limits off), and the framing guard reading a typical signed request
//! (against reading it directly).
//!
//! Run: `cargo bench -p corral-server --bench edge -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use corral_server::edge::framing::FramingGuard;
use corral_server::edge::rate_limit::{Class, Rate, RateLimiter, RateLimits};
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::io::AsyncReadExt;

/// A GetServiceSetting request as the AWS SDK for Rust sends it (headers and body).
fn signed_request() -> Vec<u8> {
    let body = r#"{"SettingId":"/ssm/managed-instance/activation-tier"}"#;
    let head = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1:8443\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amz-target: AmazonSSM.GetServiceSetting\r\nuser-agent: aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0\r\n\
         x-amz-user-agent: aws-sdk-rust/1.3.9 api/ssm/1.98.0 os/linux lang/rust/1.95.0\r\n\
         x-amz-date: 20261208T020000Z\r\n\
         authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261208/us-east-1/ssm/aws4_request, \
         SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target;x-amz-user-agent, \
         Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7\r\n\
         amz-sdk-invocation-id: 6c2d8b5e-4a7b-4d2c-9d1e-0f3a2b1c4d5e\r\namz-sdk-request: attempt=1; max=3\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

fn rate_limiter(c: &mut Criterion) {
    let keys: Vec<String> = (0..1_000).map(|i| format!("AKIA{i:016}")).collect();
    let never = Rate { per_second: 1e12, burst: 1e12 };
    let on = RateLimiter::new(RateLimits { read: Some(never), write: Some(never), ..RateLimits::off() });
    let off = RateLimiter::new(RateLimits::off());
    let mut i = 0;
    c.bench_function("admit, 1,000 keys, no limit hit", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(on.admit(Class::Read, &keys[i]))
        })
    });
    c.bench_function("admit, limits off", |b| b.iter(|| black_box(off.admit(Class::Read, &keys[0]))));
}

fn framing_guard(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let request = signed_request();
    let mut out = Vec::with_capacity(4096);
    c.bench_function("read a signed request through the framing guard", |b| {
        b.iter(|| {
            out.clear();
            runtime.block_on(FramingGuard::new(request.as_slice()).read_to_end(&mut out)).expect("read");
            black_box(out.len())
        })
    });
    c.bench_function("read a signed request directly", |b| {
        b.iter(|| {
            out.clear();
            runtime.block_on(async { request.as_slice().read_to_end(&mut out).await }).expect("read");
            black_box(out.len())
        })
    });
}

criterion_group!(benches, rate_limiter, framing_guard);
criterion_main!(benches);
