//! Micro-benchmarks of the write path's CPU work, per record: parsing, rules (with PII
//! redaction), payload compression and sketch updates. Run: `cargo bench -p engine`.
//! End-to-end throughput (HTTP + database) is measured with `modelwatch-loadgen`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::ingest::payload::Payload;
use engine::ingest::record::{BodyFormat, Limits, parse_log, split_records};
use engine::ingest::rules::RuleSet;
use engine::ingest::sketch::Sketch;
use engine::{IngestRule, RuleAction};

fn batch(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"timestamp\":1795341600{:03},\"model\":\"gpt-4o\",\"provider\":\"openai\",\"environment\":\"production\",\
                 \"operation\":\"chat\",\"status\":\"ok\",\"http_status\":200,\"latency_ms\":{}.5,\"ttft_ms\":120,\"input_tokens\":812,\
                 \"output_tokens\":96,\"user_id\":\"user-{}\",\"session_id\":\"s-{}\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e{:04}\",\
                 \"span_id\":\"00f067aa0ba902b7\",\"request\":\"Summarise the quarterly report for the finance team and list the three main risks.\",\
                 \"response\":\"The report shows revenue up 12% year on year; the main risks are currency exposure, supplier concentration and churn.\",\
                 \"metadata\":{{\"region\":\"eu-west-1\",\"tenant\":\"t-17\",\"gateway\":\"litellm\"}}}}\n",
                i % 1000,
                300 + i % 900,
                i % 500,
                i % 50,
                i % 10_000
            )
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let body = batch(1000);
    let limits = Limits::default();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("split_and_parse_1000_records", |b| {
        b.iter(|| {
            let raws = split_records(&body, BodyFormat::Ndjson, "logs", &limits).unwrap();
            for (i, r) in raws.iter().enumerate() {
                std::hint::black_box(parse_log(r, &format!("logs[{i}]"), 1_800_000_000_000, &limits).unwrap());
            }
        })
    });
    let raws = split_records(&body, BodyFormat::Ndjson, "logs", &limits).unwrap();
    let records: Vec<_> = raws.iter().map(|r| parse_log(r, "logs[0]", 1_800_000_000_000, &limits).unwrap()).collect();
    let rules = RuleSet::new(&[IngestRule {
        id: 1,
        position: 1,
        name: "pii".into(),
        enabled: true,
        model: String::new(),
        action: RuleAction::Redact {
            kinds: ["email", "phone", "credit_card", "secret", "ip_address"].iter().map(|s| s.to_string()).collect(),
            custom: vec![],
        },
    }]);
    g.bench_function("redact_all_kinds_1000_records", |b| {
        b.iter(|| {
            for r in &records {
                let mut r = r.clone();
                std::hint::black_box(rules.apply(&mut r));
            }
        })
    });
    g.bench_function("payload_encode_1000_records", |b| {
        b.iter(|| {
            for r in &records {
                let p = Payload::new(r.request.clone(), r.response.clone(), 32 * 1024).unwrap();
                std::hint::black_box(p.encode().unwrap());
            }
        })
    });
    g.bench_function("sketch_add_1000_values", |b| {
        let mut s = Sketch::new();
        b.iter(|| {
            for r in &records {
                s.add(r.latency_ms.unwrap());
            }
        })
    });
    // Logs shaped like the load generator's, stored as one block (SQLite's log storage).
    let rows = engine::testing::loadgen_shaped_logs(1000, 1, 0.0);
    let pairs: Vec<(i64, &engine::store::LogRow)> = rows.iter().enumerate().map(|(i, r)| (i as i64 + 1, r)).collect();
    g.bench_function("log_block_encode_1000_records", |b| b.iter(|| std::hint::black_box(engine::store::blocks::encode(1, &pairs).unwrap())));
    let body = engine::store::blocks::encode(1, &pairs).unwrap();
    eprintln!("log block of {} records: {} bytes, {:.1} B per record", rows.len(), body.len(), body.len() as f64 / rows.len() as f64);
    g.bench_function("log_block_decode_1000_records", |b| b.iter(|| std::hint::black_box(engine::store::blocks::decode(&body, 1, 1).unwrap())));
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
