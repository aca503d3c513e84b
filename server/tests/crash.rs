//! Crash safety: the real `modelwatch` binary is killed with SIGKILL while clients ingest. After a
//! restart, every acknowledged record is stored, and the rollups agree with the stored rows plus
//! the records counted but sampled out.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::ingest::rollup::Resolution;
use engine::reads::Caller;
use engine::search::{LogSearch, Match};
use engine::{AuthSettings, Engine, IngestRule, Principal, RuleAction, SecretKey};
use serde_json::json;

const SECRET: &str = "crash-test-secret-key-crash-test-secret-key";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn modelwatch(dir: &std::path::Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
    c.env("MODELWATCH_DATA_DIR", dir)
        .env("MODELWATCH_LISTEN", format!("127.0.0.1:{port}"))
        .env("MODELWATCH_SECRET_KEY", SECRET)
        .env("MODELWATCH_ADMIN_PASSWORD", "admin-password-1")
        .env_remove("MODELWATCH_DATABASE_URL")
        .stdin(Stdio::null());
    c
}

async fn wait_ready(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("server exited early: {status}");
        }
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_engine(dir: &std::path::Path) -> Engine {
    let url = format!("sqlite://{}", dir.join("modelwatch.db").display());
    Engine::open(&url, &SecretKey::new(SECRET.as_bytes().to_vec()).unwrap(), AuthSettings::default()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    // Set-up through the CLI and the engine, as an operator would.
    let out = modelwatch(dir.path(), 0).args(["key", "create", "--name", "crash", "--scope", "ingest"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().find_map(|l| l.strip_prefix("key: ")).expect("key printed").to_string();
    {
        let engine = open_engine(dir.path()).await;
        let rule = IngestRule {
            id: 0,
            position: 0,
            name: "sample".into(),
            enabled: true,
            model: "sampled".into(),
            action: RuleAction::Sample { keep_percent: 30.0, slow_ms: None },
        };
        engine.save_rule(&Principal::operator(), rule).await.unwrap();
        engine.shutdown().await;
    }

    let port = free_port();
    let mut server = modelwatch(dir.path(), port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(port, &mut server).await;

    // Acknowledged batches: (model, first trace id, last trace id, size).
    let acked: Arc<Mutex<Vec<(String, String, String, usize)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..3 {
        let (acked, stop, key) = (acked.clone(), stop.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut b = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let model = if c == 0 { "sampled" } else { "kept" };
                let ids: Vec<String> = (0..300).map(|i| format!("c{c}-b{b}-r{i}")).collect();
                let body: String = ids
                    .iter()
                    .map(|t| format!("{}\n", json!({"model": model, "trace_id": t, "latency_ms": 12.5, "request": "hello there", "user_id": format!("user-{}", t.len() % 3)})))
                    .collect();
                b += 1;
                let resp = http
                    .post(format!("http://127.0.0.1:{port}/api/v1/logs"))
                    .bearer_auth(&key)
                    .body(body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().unwrap().push((model.to_string(), ids[0].clone(), ids[299].clone(), 300));
                    }
                    // Refused or cut off by the kill: not acknowledged, may or may not be stored.
                    _ => {}
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 3, "clients got only {} acknowledgements before the kill", acked.len());

    // The server restarts on the same files.
    let mut server = modelwatch(dir.path(), port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_ready(port, &mut server).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let engine = open_engine(dir.path()).await;
    let op = Principal::operator();
    let store = engine::testing::store(&engine);
    let kept_id = engine.get_model(&op, "kept").await.unwrap().id;
    let sampled_id = engine.get_model(&op, "sampled").await.unwrap().id;
    let acked_kept: i64 = acked.iter().filter(|a| a.0 == "kept").map(|a| a.3 as i64).sum();
    let acked_sampled: i64 = acked.iter().filter(|a| a.0 == "sampled").map(|a| a.3 as i64).sum();

    // Every acknowledged "kept" record is there (first and last of each batch checked by trace id;
    // a batch is written in one transaction, so its ends stand for all of it) ...
    let mut seen = HashSet::new();
    for (model, first, last, _) in acked.iter().filter(|a| a.0 == "kept") {
        for t in [first, last] {
            let q = LogSearch {
                trace_id: Some(Match::Value(t.clone())),
                from: Some(0),
                to: Some(i64::MAX),
                limit: Some(1),
                payloads: true,
                ..Default::default()
            };
            let found = engine.search_logs(Caller::User(&op), model, &q).await.unwrap().logs;
            assert_eq!(found.len(), 1, "acknowledged record {t} is missing");
            assert_eq!(found[0].request.as_deref(), Some("hello there"));
            seen.insert(t.clone());
        }
    }
    let kept_rows = store.count_logs(kept_id).await.unwrap();
    assert!(kept_rows >= acked_kept, "{kept_rows} rows < {acked_kept} acknowledged");
    // ... and the rollups match the rows exactly: same transaction, so never one without the other.
    let kept = store.rollup_total(kept_id, Resolution::Minute, 0, i64::MAX).await.unwrap();
    assert_eq!((kept.requests, kept.stored), (kept_rows, kept_rows));
    let kept_hour = store.rollup_total(kept_id, Resolution::Hour, 0, i64::MAX).await.unwrap();
    assert_eq!(kept_hour.requests, kept_rows);

    let sampled_rows = store.count_logs(sampled_id).await.unwrap();
    let sampled = store.rollup_total(sampled_id, Resolution::Minute, 0, i64::MAX).await.unwrap();
    assert_eq!(sampled.stored, sampled_rows, "rollups count exactly the stored rows");
    assert!(sampled.requests >= acked_sampled, "every acknowledged record is counted");
    assert!(sampled_rows < sampled.requests, "sampling kept fewer rows than it counted");

    // User breakdowns count the same records: held-back deltas of stored rows are rebuilt at the
    // restart, and commits with sampled-out records (which leave no row to rebuild from) merge
    // their breakdowns at once.
    let range = engine::dashboards::ResolvedRange { from: 0, to: engine::now_ms() + 3_600_000, step_ms: 3_600_000 };
    for (model, want) in [("kept", kept_rows), ("sampled", sampled.requests)] {
        let b = engine.breakdown(Caller::User(&op), model, &engine::kpi::BreakdownBy::User, &range).await.unwrap();
        assert_eq!(b.rows.iter().map(|r| r.requests).sum::<i64>(), want, "user breakdown of {model}");
    }
    engine.shutdown().await;
}

/// User breakdowns held back in memory (SQLite defers them between commits) are rebuilt from
/// the stored rows when the server starts after a SIGKILL, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_breakdowns_are_held_back_rebuilds_them_once() {
    use engine::dashboards::ResolvedRange;
    use engine::kpi::BreakdownBy;

    let dir = tempfile::tempdir().unwrap();
    let out = modelwatch(dir.path(), 0).args(["key", "create", "--name", "crash", "--scope", "ingest"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().find_map(|l| l.strip_prefix("key: ")).expect("key printed").to_string();

    // A long hold-back, so the kill surely finds the breakdown deltas in memory only.
    let port = free_port();
    let mut server = modelwatch(dir.path(), port)
        .env("MODELWATCH_BREAKDOWN_FLUSH_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut server).await;
    let http = reqwest::Client::new();
    for b in 0..4 {
        let body: String = (0..250)
            .map(|i| format!("{}\n", json!({"model": "bd", "user_id": format!("u{}", i % 5), "latency_ms": 10 + b, "trace_id": format!("b{b}-{i}")})))
            .collect();
        let r = http.post(format!("http://127.0.0.1:{port}/api/v1/logs")).bearer_auth(&key).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();

    let by_user = |engine: &Engine| {
        let engine = engine.clone();
        async move {
            let op = Principal::operator();
            let range = ResolvedRange { from: 0, to: engine::now_ms() + 3_600_000, step_ms: 3_600_000 };
            let b = engine.breakdown(Caller::User(&op), "bd", &BreakdownBy::User, &range).await.unwrap();
            let mut rows: Vec<(String, i64)> = b.rows.into_iter().map(|r| (r.value, r.requests)).collect();
            rows.sort();
            rows
        }
    };
    {
        let engine = open_engine(dir.path()).await;
        let store = engine::testing::store(&engine);
        let id = engine.get_model(&Principal::operator(), "bd").await.unwrap().id;
        assert_eq!(store.count_logs(id).await.unwrap(), 1000, "every acknowledged record is stored");
        assert_eq!(by_user(&engine).await, vec![], "the killed server held the breakdowns back (else this test proves nothing)");
        engine.shutdown().await;
    }

    let expected: Vec<(String, i64)> = (0..5).map(|u| (format!("u{u}"), 200)).collect();
    for _ in 0..2 {
        // The start rebuilds the missing breakdowns before it serves; a second start adds nothing.
        let mut server = modelwatch(dir.path(), port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        wait_ready(port, &mut server).await;
        server.kill().unwrap();
        server.wait().unwrap();
        let engine = open_engine(dir.path()).await;
        assert_eq!(by_user(&engine).await, expected);
        engine.shutdown().await;
    }
}
