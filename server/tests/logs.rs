//! The log explorer over real HTTP, on SQLite and Postgres: every search filter against known
//! records, keyset pages while ingest goes on, the histogram and count, the detail view with
//! payloads withheld from viewers without `view_payloads`, RBAC on search and detail, and
//! hostile input.

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use engine::Scope;
use serde_json::{Value, json};

/// 2026-01-01T00:00:00Z; record i is at T0 + i minutes.
const T0: i64 = 1_767_225_600_000;
const N: i64 = 40;
const MIN: i64 = 60_000;

fn is_error(i: i64) -> bool {
    i % 7 == 0 || i % 7 == 1
}

/// Record i of the known data set; each field varies with i so filters cut different sets.
fn record(model: &str, i: i64) -> Value {
    let mut r = json!({
        "model": model,
        "timestamp": T0 + i * MIN,
        "provider": if i % 2 == 0 { "openai" } else { "anthropic" },
        "environment": if i % 5 == 0 { "staging" } else { "prod" },
        "operation": "chat",
        "latency_ms": 100 + i * 10,
        "cost_usd": 0.001 * i as f64,
        "cache_hit": i % 8 == 0,
        "session_id": format!("s{}", i / 10),
        "trace_id": format!("t{i}"),
        "message": match i {
            23 => "привет мир".to_string(),
            _ if i % 5 == 0 => format!("Zürich café order {i}"),
            _ => format!("call {i}"),
        },
        "metadata": {"team": if i % 2 == 0 { "search" } else { "ads" }, "flag": i % 3 == 0},
    });
    match i % 4 {
        0 | 2 => r["model_version"] = json!("v1"),
        1 => r["model_version"] = json!("v2"),
        _ => {}
    }
    if i % 7 == 0 {
        r["error_type"] = json!("timeout");
        r["http_status"] = json!(504);
        r["error_message"] = json!("upstream timed out");
    } else if i % 7 == 1 {
        r["error_type"] = json!("rate_limit");
        r["http_status"] = json!(429);
        r["error_message"] = json!("rate limited by provider");
    } else {
        r["http_status"] = json!(200);
    }
    r["level"] = json!(if is_error(i) { "error" } else if i % 10 == 5 { "debug" } else { "info" });
    if i % 3 != 0 {
        r["ttft_ms"] = json!(50 + i);
    }
    if i % 6 != 0 {
        r["input_tokens"] = json!(10 * i);
        r["output_tokens"] = json!(i);
    }
    match i % 9 {
        0 => r["feedback"] = json!(1),
        1 => r["feedback"] = json!(-1),
        _ => {}
    }
    if i % 11 != 0 {
        r["user_id"] = json!(format!("u{}", i % 3));
    }
    if i % 4 == 0 {
        r["metadata"]["tier"] = json!(i);
    }
    if i == 12 {
        r["request"] = json!(r#"{"messages":[{"role":"user","content":"What is 2+2?"}]}"#);
        r["response"] = json!("The answer is four.");
    }
    r
}

async fn seed(app: &TestApp, model: &str) -> String {
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let records: Vec<Value> = (0..N).map(|i| record(model, i)).collect();
    let (status, body) = app.ingest(&key, &records).await;
    assert_eq!((status, body["accepted"].as_i64()), (200, Some(N)), "{body}");
    key
}

async fn get(app: &TestApp, key: &str, query: &str) -> (u16, Value) {
    let resp = reqwest::Client::new().get(app.url(&format!("/api/v1/logs?{query}"))).bearer_auth(key).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The logs of one page of a search, which must succeed.
async fn logs_page(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let (status, page) = get(app, key, query).await;
    assert_eq!(status, 200, "{query}: {page}");
    page["logs"].as_array().unwrap().clone()
}

/// The record numbers a search returns (from their trace ids), checked against the count.
async fn found(app: &TestApp, key: &str, filter: &str) -> BTreeSet<i64> {
    let q = format!("model=chat&from={T0}&to={}&limit=1000&{filter}", T0 + N * MIN);
    let (status, page) = get(app, key, &q).await;
    assert_eq!(status, 200, "{filter}: {page}");
    let ids: BTreeSet<i64> = page["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["trace_id"].as_str().unwrap()[1..].parse().unwrap())
        .collect();
    assert_eq!(page["count"].as_i64(), Some(ids.len() as i64), "{filter}: count");
    assert_eq!(page["count_exact"], true);
    let bars: i64 = page["histogram"].as_array().unwrap().iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(bars, ids.len() as i64, "{filter}: histogram total");
    let errors: i64 = page["histogram"].as_array().unwrap().iter().map(|b| b["errors"].as_i64().unwrap()).sum();
    assert_eq!(errors, ids.iter().filter(|i| is_error(**i)).count() as i64, "{filter}: histogram errors");
    ids
}

fn expect(pred: impl Fn(i64) -> bool) -> BTreeSet<i64> {
    (0..N).filter(|i| pred(*i)).collect()
}

both_backends!(every_filter_matches_exactly_the_right_records, |app: TestApp| async move {
    let key = seed(&app, "chat").await;
    let tokens = |i: i64| if i % 6 != 0 { Some(11 * i) } else { None };
    let cases: Vec<(&str, BTreeSet<i64>)> = vec![
        ("", expect(|_| true)),
        ("status=error", expect(is_error)),
        ("status=ok", expect(|i| !is_error(i))),
        ("level=debug", expect(|i| !is_error(i) && i % 10 == 5)),
        ("provider=openai", expect(|i| i % 2 == 0)),
        ("model_version=v2", expect(|i| i % 4 == 1)),
        ("model_version=(none)", expect(|i| i % 4 == 3)),
        ("environment=staging", expect(|i| i % 5 == 0)),
        ("environment=staging&provider=anthropic", expect(|i| i % 5 == 0 && i % 2 == 1)),
        ("operation=embedding", expect(|_| false)),
        ("error_type=timeout", expect(|i| i % 7 == 0)),
        ("error_type=(none)", expect(|i| !is_error(i))),
        ("http_status=429", expect(|i| i % 7 == 1)),
        ("http_status=5xx", expect(|i| i % 7 == 0)),
        ("http_status=2xx", expect(|i| !is_error(i))),
        ("latency_min=200&latency_max=300", expect(|i| (10..=20).contains(&i))),
        ("ttft_max=60", expect(|i| i % 3 != 0 && i <= 10)),
        ("tokens_min=100", expect(|i| tokens(i).is_some_and(|t| t >= 100))),
        ("tokens_max=50", expect(|i| tokens(i).is_some_and(|t| t <= 50))),
        ("cost_min=0.0305", expect(|i| i >= 31)),
        ("cache_hit=true", expect(|i| i % 8 == 0)),
        ("cache_hit=false", expect(|i| i % 8 != 0)),
        ("feedback=-1", expect(|i| i % 9 == 1)),
        ("user_id=u1", expect(|i| i % 11 != 0 && i % 3 == 1)),
        ("user=(none)", expect(|i| i % 11 == 0)),
        ("session_id=s2", expect(|i| i / 10 == 2)),
        ("trace_id=t17", expect(|i| i == 17)),
        ("meta:team=ads", expect(|i| i % 2 == 1)),
        ("meta=team%3Dsearch", expect(|i| i % 2 == 0)),
        ("meta:tier=8", expect(|i| i == 8)),
        ("meta:tier=(none)", expect(|i| i % 4 != 0)),
        ("meta:flag=true", expect(|i| i % 3 == 0)),
        ("meta:team=ads&meta:flag=false", expect(|i| i % 2 == 1 && i % 3 != 0)),
        ("status=error&provider=openai&latency_min=300", expect(|i| is_error(i) && i % 2 == 0 && i >= 20)),
        ("meta:team=nobody", expect(|_| false)),
        // Full text over message, error message and payload.
        ("q=Z%C3%BCrich", expect(|i| i % 5 == 0 && i != 23)),
        ("q=caf%C3%A9", expect(|i| i % 5 == 0 && i != 23)),
        ("q=upstream", expect(|i| i % 7 == 0)),
        ("q=limited%20rate", expect(|i| i % 7 == 1)),
        ("q=%22rate%20limited%22", expect(|i| i % 7 == 1)),
        ("q=%22limited%20rate%22", expect(|_| false)),
        ("q=four", expect(|i| i == 12)),
        ("q=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82", expect(|i| i == 23)),
        ("q=CALL", expect(|i| i % 5 != 0 && i != 23)),
        ("q=call&status=error&provider=openai", expect(|i| i % 5 != 0 && i != 23 && is_error(i) && i % 2 == 0)),
    ];
    for (filter, want) in cases {
        assert_eq!(found(&app, &key, filter).await, want, "{filter}");
    }
    // The time range: [from, to) over record times.
    let (_, page) = get(&app, &key, &format!("model=chat&from={}&to={}", T0 + 5 * MIN, T0 + 8 * MIN)).await;
    let ids: Vec<&str> = page["logs"].as_array().unwrap().iter().map(|l| l["trace_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t7", "t6", "t5"], "newest first, to exclusive");
    // A range entirely in the future is empty, not an error.
    let far = engine::now_ms() + 400 * 86_400_000;
    let (status, page) = get(&app, &key, &format!("model=chat&from={far}&to={}", far + MIN)).await;
    assert_eq!((status, page["count"].as_i64()), (200, Some(0)), "{page}");
});

both_backends!(trace_and_span_ids_read_back_as_written_and_match, |app: TestApp| async move {
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let (trace, span) = ("0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7");
    let records = [
        json!({"model": "ids", "timestamp": T0, "trace_id": trace, "span_id": span, "message": "hex"}),
        json!({"model": "ids", "timestamp": T0 + 1, "trace_id": "Req-42", "span_id": "ABCDEF", "message": "text"}),
        json!({"model": "ids", "timestamp": T0 + 2, "message": "none"}),
    ];
    assert_eq!(app.ingest(&key, &records).await.1["accepted"], 3);
    let search = |q: String| {
        let (app, key) = (&app, &key);
        async move {
            let (status, page) = get(app, key, &format!("model=ids&from={T0}&to={}&{q}", T0 + MIN)).await;
            assert_eq!(status, 200, "{q}: {page}");
            page["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| (l["message"].as_str().unwrap().to_string(), l["trace_id"].clone(), l["span_id"].clone()))
                .collect::<Vec<_>>()
        }
    };
    let hex = ("hex".to_string(), json!(trace), json!(span));
    assert_eq!(search(format!("trace_id={trace}")).await, vec![hex.clone()]);
    // Ids match exactly as written, whatever form they are stored in.
    assert_eq!(search(format!("trace_id={}", trace.to_uppercase())).await, vec![]);
    assert_eq!(search("trace_id=Req-42".into()).await, vec![("text".to_string(), json!("Req-42"), json!("ABCDEF"))]);
    assert_eq!(search("trace_id=req-42".into()).await, vec![]);
    assert_eq!(search("trace_id=(none)".into()).await.len(), 1, "records without a trace id");
    let all = search(String::new()).await;
    assert_eq!(all.len(), 3);
    assert!(all.contains(&hex));

    // SQLite keeps hex ids as their bytes (16 and 8), other ids as text.
    if app.database_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        let kinds: Vec<(String, String, Option<i64>)> =
            sqlx::query_as("SELECT typeof(trace_id), typeof(span_id), length(trace_id) FROM logs WHERE trace_id IS NOT NULL ORDER BY ts")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(kinds, vec![("blob".into(), "blob".into(), Some(16)), ("text".into(), "text".into(), Some(6))]);
        // Rows written before ids were kept as bytes hold hex text; they still match.
        sqlx::query("UPDATE logs SET trace_id = CAST(lower(hex(trace_id)) AS TEXT) WHERE typeof(trace_id) = 'blob'")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(search(format!("trace_id={trace}")).await, vec![hex.clone()]);
    }
});

both_backends!(payloads_are_read_back_and_deleted_with_their_logs, |app: TestApp| async move {
    let admin = app.admin().await;
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    // Several requests' worth, so that the writer stores them in more than one commit.
    let system = "You are a careful assistant. Answer in one sentence. ".repeat(4);
    for batch in 0..3 {
        let records: Vec<Value> = (0..50)
            .map(|i| {
                let n = batch * 50 + i;
                let secret = if n % 10 == 3 { format!("drop-{n}") } else { format!("keep-{n}") };
                json!({"model": "pl", "timestamp": T0 + n, "trace_id": secret, "request": format!("{system} Question {secret}"), "response": format!("Answer {secret}")})
            })
            .collect();
        assert_eq!(app.ingest(&key, &records).await.1["accepted"], 50);
    }
    let page = |q: &str| {
        let (app, key) = (&app, &key);
        let q = format!("model=pl&from={T0}&to={}&limit=1000&payloads=true&{q}", T0 + MIN);
        async move { logs_page(app, key, &q).await }
    };
    let logs = page("").await;
    assert_eq!(logs.len(), 150);
    for l in &logs {
        let t = l["trace_id"].as_str().unwrap();
        assert_eq!(l["request"].as_str().unwrap(), format!("{system} Question {t}"));
        assert_eq!(l["response"].as_str().unwrap(), format!("Answer {t}"));
    }

    // Deleting by filter removes exactly those logs' payloads, wherever they are stored.
    let q = format!("from={T0}&to={}&q=drop", T0 + MIN);
    let n = app.call_ok(&admin, "count_logs_to_delete", &[("model", "pl"), ("query", &q)]).await;
    assert_eq!(n.as_i64(), Some(15));
    app.call_ok(&admin, "delete_logs", &[("model", "pl"), ("query", &q), ("confirm", &n.to_string())]).await;
    let logs = page("").await;
    assert_eq!(logs.len(), 135);
    for l in &logs {
        let t = l["trace_id"].as_str().unwrap();
        assert!(t.starts_with("keep-"), "{t}");
        assert_eq!(l["response"].as_str().unwrap(), format!("Answer {t}"));
    }

    // Ids are never handed out twice: after the newest log is deleted, the next one gets a new
    // id, so nothing left of the deleted log (a cached block, an index entry) can attach to it.
    let gone = page("trace_id=keep-149").await[0]["id"].as_i64().unwrap();
    // (Postgres' parser reads "-149" as a number of its own, so the text check is SQLite's.)
    let sqlite = app.database_url.starts_with("sqlite");
    if sqlite {
        assert_eq!(page("q=keep-149").await.len(), 1);
    }
    let q = format!("from={T0}&to={}&trace_id=keep-149", T0 + MIN);
    app.call_ok(&admin, "delete_logs", &[("model", "pl"), ("query", &q), ("confirm", "1")]).await;
    assert_eq!(page("trace_id=keep-148").await[0]["response"], "Answer keep-148");
    let next = json!({"model": "pl", "timestamp": T0 + 500, "trace_id": "new-1", "request": "fresh", "response": "Answer new-1"});
    assert_eq!(app.ingest(&key, &[next]).await.1["accepted"], 1);
    let fresh = page("trace_id=new-1").await;
    assert_eq!((fresh[0]["request"].as_str(), fresh[0]["response"].as_str()), (Some("fresh"), Some("Answer new-1")));
    assert!(fresh[0]["id"].as_i64().unwrap() > gone, "id {} handed out again", gone);
    if sqlite {
        assert!(page("q=keep-149").await.is_empty(), "the deleted log's text still matches");
        // Gone from the index file itself, not only unreachable.
        let index = app.database_url.strip_prefix("sqlite://").unwrap().replace("modelwatch.db", "modelwatch-fts.db");
        let file = sqlx::SqlitePool::connect(&format!("sqlite://{index}")).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH '\"keep 149\"'").fetch_one(&file).await.unwrap();
        assert_eq!(left, 0, "the deleted log is still in the index file");
        file.close().await;
        // The logs kept are found (through their block's filter of words, which the
        // deletion rebuilt without the deleted log's words).
        assert_eq!(page("q=%22keep+148%22").await.len(), 1);
    }
    assert_eq!(page("q=fresh").await.len(), 1);

    // A deletion while ingest keeps the database busy still goes through.
    let busy = {
        let (url, key) = (app.url("/api/v1/logs"), key.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..40 {
                let body: String = (0..200).map(|j| format!("{}\n", json!({"model": "other", "trace_id": format!("b{i}-{j}"), "request": "x"}))).collect();
                let r = client.post(&url).bearer_auth(&key).header("content-type", "application/x-ndjson").body(body).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    };
    for n in [5, 7] {
        let q = format!("from={T0}&to={}&trace_id=keep-{n}", T0 + MIN);
        app.call_ok(&admin, "delete_logs", &[("model", "pl"), ("query", &q), ("confirm", "1")]).await;
    }
    busy.await.unwrap();
    assert_eq!(page("").await.len(), 133);

    // On SQLite they are gone from the blocks themselves, not just unreachable.
    if app.database_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        let blocks: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT first_id, body FROM payload_blocks").fetch_all(&pool).await.unwrap();
        assert!(!blocks.is_empty());
        let mut stored = 0;
        for (first_id, body) in &blocks {
            for (_, p) in engine::ingest::payload::decode_block(body, *first_id).unwrap() {
                let text = engine::ingest::payload::Payload::decode(&p, false).unwrap();
                if text.request == "x" {
                    continue; // the other model's
                }
                let t = text.response.strip_prefix("Answer ").unwrap();
                assert!(!t.starts_with("drop-") && !["keep-5", "keep-7", "keep-149"].contains(&t), "{t} was deleted");
                stored += 1;
            }
        }
        assert_eq!(stored, 133);
        let legacy: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payloads").fetch_one(&pool).await.unwrap();
        assert_eq!(legacy, 0, "new payloads are all in blocks");

        // A database written before blocks has one `payloads` row per log: still read. (The
        // rows say "Legacy" so that a payload served from a stale cached block would show.)
        for (first_id, body) in &blocks {
            for (id, p) in engine::ingest::payload::decode_block(body, *first_id).unwrap() {
                let mut text = engine::ingest::payload::Payload::decode(&p, false).unwrap();
                text.response = text.response.replace("Answer", "Legacy");
                sqlx::query("INSERT INTO payloads (log_id, body) VALUES (?, ?)").bind(id).bind(text.encode().unwrap()).execute(&pool).await.unwrap();
            }
        }
        sqlx::query("DELETE FROM payload_blocks").execute(&pool).await.unwrap();
        let q = format!("from={T0}&to={}&trace_id=keep-0", T0 + MIN);
        app.call_ok(&admin, "delete_logs", &[("model", "pl"), ("query", &q), ("confirm", "1")]).await;
        let logs = page("").await;
        assert_eq!(logs.len(), 132);
        for l in &logs {
            let t = l["trace_id"].as_str().unwrap();
            assert_eq!(l["response"].as_str().unwrap(), format!("Legacy {t}"));
        }
    }
});

/// How many logs of model `ft` a full-text search finds.
async fn search(app: &TestApp, key: &str, q: &str) -> usize {
    search_in(app, key, "ft", q).await
}

/// How many logs of `model` a full-text search finds.
async fn search_in(app: &TestApp, key: &str, model: &str, q: &str) -> usize {
    logs_page(app, key, &format!("model={model}&from={T0}&to={}&limit=100&q={q}", T0 + MIN)).await.len()
}

/// On SQLite, logs stored as rows (fewer than 8 of a model in a commit) are in an FTS5 index
/// in a file of its own (`modelwatch-fts.db`), written after each commit. Whatever it lacks
/// (an unclean stop between the commit and the indexing, a lost file) is rebuilt from the
/// stored rows and payloads at the next start. Logs in blocks are found through their block's
/// filter of words, which is written with the block, so the FTS5 file does not hold them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_text_index_is_rebuilt_from_stored_logs() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let record = |model: &str, i: i64| {
        json!({"model": model, "timestamp": T0 + i, "trace_id": format!("t-{i}"), "message": format!("call number{i}"),
               "request": format!("prompt about zebras {i}"), "response": if i % 3 == 0 { "the giraffe answer" } else { "plain" }})
    };
    // Model `ft`: five logs a call, so each commit stores them as rows.
    let records: Vec<Value> = (0..30).map(|i| record("ft", i)).collect();
    for chunk in records.chunks(5) {
        assert_eq!(app.ingest(&key, chunk).await.1["accepted"], 5);
    }
    // Model `fb`: one call of 30, stored as a block.
    let block: Vec<Value> = (0..30).map(|i| record("fb", i)).collect();
    assert_eq!(app.ingest(&key, &block).await.1["accepted"], 30);
    // Searchable as soon as the ingest call is answered.
    assert_eq!(search(&app, &key, "zebras").await, 30);
    assert_eq!(search(&app, &key, "giraffe").await, 10);
    assert_eq!(search(&app, &key, "number7").await, 1);
    assert_eq!((search_in(&app, &key, "fb", "zebras").await, search_in(&app, &key, "fb", "giraffe").await, search_in(&app, &key, "fb", "number7").await), (30, 10, 1));

    // Empty the index file and move its mark back, as if the server had stopped before
    // indexing these logs.
    let db = app.database_url.strip_prefix("sqlite://").unwrap().to_string();
    let index = db.replace("modelwatch.db", "modelwatch-fts.db");
    assert!(std::path::Path::new(&index).exists(), "{index}");
    let conn = sqlx::SqlitePool::connect(&format!("sqlite://{index}")).await.unwrap();
    sqlx::query("DELETE FROM logs_fts").execute(&conn).await.unwrap();
    sqlx::query("UPDATE full_text_mark SET through = 0").execute(&conn).await.unwrap();
    conn.close().await;
    assert_eq!(search(&app, &key, "zebras").await, 0, "searches read the index file");
    assert_eq!(search_in(&app, &key, "fb", "zebras").await, 30, "logs in blocks do not need the index file");

    // The next start indexes them again, from the rows (message) and the payload blocks.
    let again = common::spawn_app_at(tempfile::tempdir().unwrap(), app.database_url.clone()).await;
    let started = std::time::Instant::now();
    while search(&again, &key, "zebras").await < 30 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "index not rebuilt");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(search(&again, &key, "giraffe").await, 10);
    assert_eq!(search(&again, &key, "number7").await, 1);
    assert_eq!(search(&again, &key, "plain").await, 20);
    assert_eq!((search_in(&again, &key, "fb", "zebras").await, search_in(&again, &key, "fb", "plain").await), (30, 20));
    // The rebuild indexed the rows only.
    let conn = sqlx::SqlitePool::connect(&format!("sqlite://{index}")).await.unwrap();
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'zebras'").fetch_one(&conn).await.unwrap();
    assert_eq!(entries, 30);
    conn.close().await;
}

/// On SQLite a commit's logs of one model go into a compressed block (8 logs or more), where a
/// repeated metadata object costs next to nothing; fewer stay rows, where an object used at
/// least three times in the commit is stored once (`log_metadata`) and referred to. Reads,
/// filters and deletions see no difference, and deleting logs releases their references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_metadata_in_blocks_and_shared_in_rows() {
    let app = common::spawn_app(common::Backend::Sqlite).await.unwrap();
    let admin = app.admin().await;
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let meta = |i: i64| match i % 10 {
        9 => json!({"team": "c", "request_id": format!("r-{i}")}),
        _ if i == 5 || i == 15 => json!({"team": "e"}),
        n if n % 2 == 0 => json!({"team": "a", "tier": 1}),
        _ => json!({"team": "b", "flag": true}),
    };
    let records: Vec<Value> = (0..30).map(|i| json!({"model": "md", "timestamp": T0 + i, "trace_id": format!("m-{i}"), "metadata": meta(i)})).collect();
    assert_eq!(app.ingest(&key, &records).await.1["accepted"], 30);

    let db = app.database_url.clone();
    let conn = sqlx::SqlitePool::connect(&db).await.unwrap();
    let dictionary = || {
        let conn = conn.clone();
        async move {
            let rows = sqlx::query_as::<_, (String, i64)>("SELECT body, refs FROM log_metadata ORDER BY refs").fetch_all(&conn).await.unwrap();
            rows.into_iter().map(|(body, refs)| (serde_json::from_str::<Value>(&body).unwrap(), refs)).collect::<Vec<_>>()
        }
    };
    let stored = || {
        let conn = conn.clone();
        async move {
            sqlx::query_as::<_, (i64, i64)>("SELECT (SELECT COUNT(*) FROM logs), (SELECT COALESCE(SUM(count), 0) FROM log_blocks)")
                .fetch_one(&conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(dictionary().await, vec![], "a block keeps its metadata itself");
    assert_eq!(stored().await, (0, 30), "(rows, logs in blocks)");

    // Four logs in a commit stay rows, and share their one object.
    let more: Vec<Value> = (30..34).map(|i| json!({"model": "md", "timestamp": T0 + i, "trace_id": format!("m-{i}"), "metadata": {"team": "a", "tier": 1}})).collect();
    assert_eq!(app.ingest(&key, &more).await.1["accepted"], 4);
    assert_eq!(stored().await, (4, 30));
    assert_eq!(dictionary().await, vec![(json!({"team": "a", "tier": 1}), 4)]);
    let inline: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logs WHERE metadata IS NOT NULL").fetch_one(&conn).await.unwrap();
    assert_eq!(inline, 0);

    // Read back and filtered the same, shared or not.
    let page = |q: String| {
        let (app, key) = (&app, &key);
        async move { logs_page(app, key, &format!("model=md&from={T0}&to={}&limit=100&{q}", T0 + MIN)).await }
    };
    let all = page(String::new()).await;
    assert_eq!(all.len(), 34);
    for l in &all {
        let i: i64 = l["trace_id"].as_str().unwrap()[2..].parse().unwrap();
        let want = if i >= 30 { json!({"team": "a", "tier": 1}) } else { meta(i) };
        assert_eq!(l["metadata"], want, "log {i}");
    }
    assert_eq!(page("meta:team=a".into()).await.len(), 19);
    assert_eq!(page("meta:flag=true".into()).await.len(), 10);
    assert_eq!(page("meta:team=e".into()).await.len(), 2);
    assert_eq!(page("meta:request_id=r-19".into()).await.len(), 1);
    assert_eq!(page("meta:tier=(none)".into()).await.len(), 15);

    // Deleting logs gives their references back; an entry nobody refers to is gone.
    let q = format!("from={T0}&to={}&meta:team=b", T0 + MIN);
    app.call_ok(&admin, "delete_logs", &[("model", "md"), ("query", &q), ("confirm", "10")]).await;
    let q = format!("from={T0}&to={}&meta:team=a&trace_id=m-30", T0 + MIN);
    app.call_ok(&admin, "delete_logs", &[("model", "md"), ("query", &q), ("confirm", "1")]).await;
    assert_eq!(dictionary().await, vec![(json!({"team": "a", "tier": 1}), 3)]);
    assert_eq!(stored().await, (3, 20), "the block rewritten without the deleted logs");
    assert_eq!(page(String::new()).await.len(), 23);
    assert_eq!(page("meta:team=a".into()).await.len(), 18);
    conn.close().await;
}

both_backends!(pages_have_no_duplicates_or_gaps_while_ingest_goes_on, |app: TestApp| async move {
    let key = seed(&app, "chat").await;
    let range = format!("model=chat&from={T0}&to={}", T0 + 10 * N * MIN);
    let mut seen: Vec<(i64, i64)> = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &before {
            Some(c) => format!("{range}&limit=7&before={c}"),
            None => format!("{range}&limit=7"),
        };
        let (status, page) = get(&app, &key, &q).await;
        assert_eq!(status, 200, "{page}");
        for l in page["logs"].as_array().unwrap() {
            seen.push((l["timestamp"].as_i64().unwrap(), l["id"].as_i64().unwrap()));
        }
        pages += 1;
        // New records arrive between pages (newer than the first page): they must not push
        // rows from one page onto the next.
        let fresh: Vec<Value> = (0..3).map(|j| record("chat", N + pages * 3 + j)).collect();
        assert_eq!(app.ingest(&key, &fresh).await.0, 200);
        match page["next"].as_str() {
            Some(c) => before = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 50, "paging does not end");
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "strictly newest first, no duplicates");
    // Every original record was on some page.
    let (_, all) = get(&app, &key, &format!("model=chat&from={T0}&to={}&limit=1000", T0 + N * MIN)).await;
    for l in all["logs"].as_array().unwrap() {
        let k = (l["timestamp"].as_i64().unwrap(), l["id"].as_i64().unwrap());
        assert!(seen.contains(&k), "record {k:?} was skipped");
    }
    assert!(pages >= 6, "40 records in pages of 7");
});

both_backends!(detail_and_payload_permission, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "chat").await;
    app.create_model(&admin, "other").await;
    let key = seed(&app, "chat").await;
    let (_, other) = app.ingest(&key, &[record("other", 1)]).await;
    assert_eq!(other["accepted"], 1);
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    let reader_id = app.create_user(&admin, "pr", "viewer", "reader-password").await;
    app.grant(&admin, viewer_id, "chat", false).await;
    app.grant(&admin, reader_id, "chat", true).await;
    let viewer = app.login("vi", "viewer-password").await;
    let reader = app.login("pr", "reader-password").await;

    let (_, page) = get(&app, &key, &format!("model=chat&from={T0}&to={}&trace_id=t12", T0 + N * MIN)).await;
    let id = page["logs"][0]["id"].as_i64().unwrap();
    let (_, page) = get(&app, &key, &format!("model=other&from={T0}&to={}", T0 + N * MIN)).await;
    let other_id = page["logs"][0]["id"].as_i64().unwrap();

    let detail = |c: reqwest::Client, id: i64| {
        let url = app.url(&format!("/api/v1/logs/{id}"));
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // With view_payloads: the whole log and its payload.
    let (status, log) = detail(reader.clone(), id).await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["trace_id"], "t12");
    assert_eq!(log["metadata"]["tier"], 12);
    assert_eq!(log["request"], r#"{"messages":[{"role":"user","content":"What is 2+2?"}]}"#);
    assert_eq!(log["response"], "The answer is four.");
    assert_eq!(log["payload_withheld"], false);
    // Without: the fields, but the payload is never sent.
    let (status, log) = detail(viewer.clone(), id).await;
    assert_eq!(status, 200);
    assert_eq!(log["message"], "call 12");
    assert!(log["request"].is_null() && log["response"].is_null(), "{log}");
    assert_eq!(log["payload_withheld"], true);
    let html = viewer.get(app.url(&format!("/logs/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-testid=\"payload-withheld\""));
    assert!(!html.contains("2+2"), "the payload is not in the page");
    let html = reader.get(app.url(&format!("/logs/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("data-testid=\"payload-request\"") && html.contains("What is 2+2?"));
    // A model the viewer may not see: 404, as if the log did not exist.
    assert_eq!(detail(viewer.clone(), other_id).await.0, 404);
    assert_eq!(detail(viewer.clone(), 987_654_321).await.0, 404);
    assert_eq!(viewer.get(app.url(&format!("/logs/{other_id}"))).send().await.unwrap().status(), 404);
    // A read key limited to one model sees only that model's logs.
    let limited = app.api_key(&[Scope::Read], &["other"]).await;
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/{id}"))).bearer_auth(&limited).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/{other_id}"))).bearer_auth(&limited).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // An ingest-only key may not read.
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/{id}"))).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Search: the viewer's searches never reach the other model, and payloads need the grant.
    let s = viewer.get(app.url("/api/v1/logs?model=other")).send().await.unwrap().status();
    assert_eq!(s, 404);
    let s = viewer.get(app.url("/api/v1/logs?model=chat&payloads=true")).send().await.unwrap().status();
    assert_eq!(s, 403);
    // The explorer page lists the logs with links to their detail.
    let html = viewer
        .get(app.url(&format!("/models/chat/logs?from={T0}&to={}&status=error&provider=openai", T0 + N * MIN)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows = html.matches("data-log-id=").count();
    assert_eq!(rows as i64, expect(|i| is_error(i) && i % 2 == 0).len() as i64, "one row per match");
    assert!(html.contains("data-filter=\"provider\""), "the active filter is shown");
    assert!(html.contains("data-testid=\"model-picker\""));
    // The model picker's form goes through /logs to the chosen model's explorer, filters kept.
    let r = viewer.get(app.url("/logs/open?model=other&status=error&before=1.2&q=")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/models/other/logs?status=error");
    // ... where a model the viewer may not see is a 404 page.
    assert_eq!(viewer.get(app.url("/models/other/logs?status=error")).send().await.unwrap().status(), 404);
});

both_backends!(hostile_input_is_answered_safely, |app: TestApp| async move {
    let key = seed(&app, "chat").await;
    let range = format!("model=chat&from={T0}&to={}", T0 + N * MIN);
    // Quotes and SQL fragments are values like any other: no match, no error.
    for filter in [
        "user_id=%27%20OR%201%3D1%20--",
        "meta:team=x%27)%3B%20DROP%20TABLE%20logs%3B--",
        "trace_id=%22%3B%20SELECT%20*%20FROM%20users",
        "provider=%25",
        "error_type=*",
    ] {
        let (status, page) = get(&app, &key, &format!("{range}&{filter}")).await;
        assert_eq!((status, page["count"].as_i64()), (200, Some(0)), "{filter}: {page}");
    }
    // Refused with a 4xx naming the parameter.
    let long = "x".repeat(5000);
    for (filter, field) in [
        (format!("user_id={long}"), "user_id"),
        ("meta:a%22b=1".to_string(), "meta:a\"b"),
        ("colour=red".to_string(), "colour"),
        ("http_status=abc".to_string(), "http_status"),
        ("before=garbage".to_string(), "before"),
        ("limit=100000".to_string(), "limit"),
        ("latency_min=1e999".to_string(), "latency_min"),
        ("from=10&to=5".to_string(), "from"),
    ] {
        let q = if filter.starts_with("from=") { format!("model=chat&{filter}") } else { format!("{range}&{filter}") };
        let (status, body) = get(&app, &key, &q).await;
        assert!((400..500).contains(&status), "{field}: {status} {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    // Search text is words, never query syntax: operators, quotes and SQL are taken literally.
    for q in ["%22unbalanced", "NEAR(call", "call%20OR%20x", "call%20-x", "%27%3B%20DROP%20TABLE%20logs%3B%20--", "call*", "a%20AND%20NOT"] {
        let (status, page) = get(&app, &key, &format!("{range}&q={q}")).await;
        assert_eq!(status, 200, "q={q}: {page}");
    }
    for q in ["*", "%22%22", "%3B%20--%20%2B"] {
        let (status, body) = get(&app, &key, &format!("{range}&q={q}")).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("q")), "q={q}: {body}");
    }
    let (status, body) = get(&app, &key, &format!("{range}&q={}", "w".repeat(600))).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("q")), "{body}");
    let (status, body) = get(&app, &key, "payloads=true").await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("payloads")), "payloads need one model: {body}");
    let r = reqwest::Client::new().get(app.url("/api/v1/logs/abc")).bearer_auth(&key).send().await.unwrap();
    assert!(r.status().is_client_error());
    // Still all there.
    assert_eq!(found(&app, &key, "").await.len() as i64, N);
});

both_backends!(export_streams_the_whole_search, |app: TestApp| async move {
    let key = seed(&app, "chat").await;
    let range = format!("model=chat&from={T0}&to={}", T0 + N * MIN);
    let export = |q: String| {
        let url = app.url(&format!("/api/v1/logs/export?{q}"));
        let key = key.clone();
        async move {
            let r = reqwest::Client::new().get(url).bearer_auth(&key).send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.text().await.unwrap())
        }
    };
    // NDJSON, filtered: exactly the matching records, newest first.
    let (status, headers, body) = export(format!("{range}&format=ndjson&status=error")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert!(headers["content-disposition"].to_str().unwrap().contains("chat-logs.ndjson"));
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want: Vec<String> = expect(is_error).iter().rev().map(|i| format!("t{i}")).collect();
    let got: Vec<String> = lines.iter().map(|l| l["trace_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, want);
    // CSV: a header and one row per record, fields quoted where needed.
    let (status, headers, body) = export(range.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let mut rows = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(&header[..3], ["id", "time", "model"]);
    let records: Vec<csv::StringRecord> = rows.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len() as i64, N);
    let meta = header.iter().position(|h| h == "metadata").unwrap();
    let last: Value = serde_json::from_str(&records[0][meta]).unwrap();
    assert_eq!(last["team"], "ads", "record 39's metadata as JSON in one cell");
    // The row limit.
    let (status, headers, body) = export(format!("{range}&format=ndjson&max_rows=5")).await;
    assert_eq!((status, body.lines().count()), (200, 5));
    assert_eq!(headers["x-modelwatch-row-limit"], "5");
    // More rows than one page: every row once.
    let many: Vec<Value> = (0..2500).map(|i| json!({"model": "bulk", "timestamp": T0 + i, "trace_id": format!("b{i}")})).collect();
    assert_eq!(app.ingest(&key, &many).await.0, 200);
    let (_, _, body) = export(format!("model=bulk&from={T0}&to={}&format=ndjson", T0 + 10_000)).await;
    let ids: BTreeSet<String> = body.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["trace_id"].as_str().unwrap().to_string()).collect();
    assert_eq!((body.lines().count(), ids.len()), (2500, 2500));
    // Refusals: a bad format or limit names the parameter; other models are not found.
    let (status, _, body) = export(format!("{range}&format=xml")).await;
    assert_eq!(status, 422);
    assert!(body.contains("\"format\""), "{body}");
    let (status, _, _) = export(format!("{range}&max_rows=1000000")).await;
    assert_eq!(status, 422);
    let limited = app.api_key(&[Scope::Read], &["bulk"]).await;
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/export?{range}"))).bearer_auth(&limited).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/export?{range}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
});

/// Reads server-sent events from a streaming response until `done` says stop (or 20 s).
async fn read_events(resp: &mut reqwest::Response, mut done: impl FnMut(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done(&events) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk()).await.expect("events in time").unwrap().expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !block.trim().starts_with(':') {
                events.push((name, data));
            }
        }
    }
    events
}

both_backends!(live_tail_streams_new_matching_logs, |app: TestApp| async move {
    let key = seed(&app, "chat").await;
    let mut tail = reqwest::Client::new()
        .get(app.url("/api/v1/logs/tail?model=chat&status=error"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    assert_eq!(tail.headers()["content-type"], "text/event-stream");
    let ready = read_events(&mut tail, |e| !e.is_empty()).await;
    assert_eq!(ready[0].0, "ready", "{ready:?}");
    // Only new logs that match: the old errors and the new ok record are not sent.
    let now = engine::now_ms();
    let fresh = [
        json!({"model": "chat", "timestamp": now, "trace_id": "new-ok"}),
        json!({"model": "chat", "timestamp": now, "trace_id": "new-error", "status": "error", "error_type": "timeout"}),
    ];
    assert_eq!(app.ingest(&key, &fresh).await.0, 200);
    let events = read_events(&mut tail, |e| e.iter().any(|(n, _)| n == "log")).await;
    let logs: Vec<Value> = events.iter().filter(|(n, _)| n == "log").map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(logs.len(), 1, "{events:?}");
    assert_eq!(logs[0]["trace_id"], "new-error");
    // A burst larger than one look: the newest 200, announced as sampled.
    let burst: Vec<Value> =
        (0..450).map(|i| json!({"model": "chat", "timestamp": now + i, "trace_id": format!("burst-{i}"), "status": "error"})).collect();
    assert_eq!(app.ingest(&key, &burst).await.0, 200);
    let events = read_events(&mut tail, |e| e.iter().filter(|(n, _)| n == "log").count() >= 200).await;
    let first = events.iter().position(|(n, _)| n == "sampled").expect("sampled event");
    let logs: Vec<Value> = events[first..].iter().filter(|(n, _)| n == "log").map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(logs.len(), 200);
    assert_eq!(logs.last().unwrap()["trace_id"], "burst-449", "the newest are kept, oldest first");
    drop(tail);

    // Authorised before the stream starts.
    let admin = app.admin().await;
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    let _ = viewer_id;
    let viewer = app.login("vi", "viewer-password").await;
    assert_eq!(viewer.get(app.url("/api/v1/logs/tail?model=chat")).send().await.unwrap().status(), 404);
    assert_eq!(reqwest::Client::new().get(app.url("/api/v1/logs/tail?model=chat")).send().await.unwrap().status(), 401);
    let writer = app.api_key(&[Scope::Ingest], &[]).await;
    let r = reqwest::Client::new().get(app.url("/api/v1/logs/tail?model=chat")).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(r.status(), 403);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_can_be_switched_off() {
    let app = common::spawn_app_with(common::Backend::Sqlite, |c| c.ingest.full_text = false).await.unwrap();
    let key = seed(&app, "chat").await;
    let range = format!("model=chat&from={T0}&to={}", T0 + N * MIN);
    let (status, body) = get(&app, &key, &format!("{range}&q=call")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("q")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("switched off"));
    // Everything else still works.
    assert_eq!(found(&app, &key, "status=error").await, expect(is_error));
}

both_backends!(saved_searches_belong_to_their_user, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "chat").await;
    app.create_model(&admin, "other").await;
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    app.grant(&admin, viewer_id, "chat", false).await;
    let viewer = app.login("vi", "viewer-password").await;

    let id = app
        .call_ok(&viewer, "save_search", &[("model", "chat"), ("name", "errors"), ("query", "range=24h&status=error&before=1.2")])
        .await;
    let id = id.as_i64().unwrap();
    let list = app.call_ok(&viewer, "saved_searches", &[("model", "chat")]).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "errors");
    assert_eq!(list[0]["query"], "range=24h&status=error", "the page cursor is not saved");
    // The same name replaces; text and metadata filters survive the round trip.
    app.call_ok(&viewer, "save_search", &[("model", "chat"), ("name", "errors"), ("query", "q=rate+limit&meta%3Ateam=a%26b")]).await;
    let list = app.call_ok(&viewer, "saved_searches", &[("model", "chat")]).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(engine::search::query_pairs(list[0]["query"].as_str().unwrap()), vec![
        ("q".to_string(), "rate limit".to_string()),
        ("meta:team".to_string(), "a&b".to_string())
    ]);
    // Another user's list does not show it, and they cannot delete it.
    let theirs = app.call_ok(&admin, "saved_searches", &[("model", "chat")]).await;
    assert!(theirs.as_array().unwrap().is_empty());
    assert_eq!(app.call(&admin, "delete_saved_search", &[("id", &id.to_string())]).await.status(), 404);
    // Bad input names the field; hidden models are not found.
    let r = app.call(&viewer, "save_search", &[("model", "chat"), ("name", "bad"), ("query", "status=maybe")]).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "query");
    let r = app.call(&viewer, "save_search", &[("model", "chat"), ("name", " "), ("query", "")]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "name");
    assert_eq!(app.call(&viewer, "save_search", &[("model", "other"), ("name", "x"), ("query", "")]).await.status(), 404);
    // Deleted by its owner.
    assert_eq!(app.call(&viewer, "delete_saved_search", &[("id", &id.to_string())]).await.status(), 200);
    assert!(app.call_ok(&viewer, "saved_searches", &[("model", "chat")]).await.as_array().unwrap().is_empty());
});

both_backends!(histogram_reads_a_bounded_number_of_logs, |app: TestApp| async move {
    use engine::store::filter::{Cond, LogFilter};
    seed(&app, "chat").await;
    let store = engine::testing::store(&app.engine);
    let model_id = app.model_id("chat").await;
    let errors = LogFilter {
        model_id,
        from: T0,
        to: T0 + N * MIN,
        conds: vec![Cond::Flag(engine::ingest::FLAG_ERROR, true)],
        ..Default::default()
    };
    // Unbounded: every error, in its minute.
    let all = store.log_histogram(&errors, MIN, 1_000).await.unwrap();
    assert_eq!(all.iter().map(|b| b.n).sum::<i64>(), expect(is_error).len() as i64);
    assert_eq!(all.iter().map(|b| b.scanned).sum::<i64>(), N);
    assert!(all.iter().all(|b| b.n == i64::from(is_error(b.bar))), "{all:?}");
    // Capped at 10 logs read: only the newest ten minutes are counted, whatever matches.
    let capped = store.log_histogram(&errors, MIN, 10).await.unwrap();
    assert_eq!(capped.iter().map(|b| b.scanned).sum::<i64>(), 10);
    assert_eq!(capped.iter().map(|b| b.oldest).min(), Some(T0 + 30 * MIN));
    assert_eq!(capped.iter().map(|b| b.n).sum::<i64>(), (30..N).filter(|i| is_error(*i)).count() as i64);
});

both_backends!(admins_delete_logs_by_filter_with_a_confirmed_count, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "chat").await;
    app.call_ok(&admin, "set_breakdown_keys", &[("name", "chat"), ("keys", "team")]).await;
    let key = seed(&app, "chat").await;
    let editor_id = app.create_user(&admin, "ed", "editor", "editor-password").await;
    app.grant(&admin, editor_id, "chat", true).await;
    let editor = app.login("ed", "editor-password").await;
    let range = format!("from={T0}&to={}", T0 + N * MIN);
    let u1 = format!("{range}&user_id=u1");
    let users = |i: i64| i % 11 != 0 && i % 3 == 1;

    // Only admins, and only with the count they were shown.
    assert_eq!(app.call(&editor, "count_logs_to_delete", &[("model", "chat"), ("query", &u1)]).await.status(), 403);
    let n = app.call_ok(&admin, "count_logs_to_delete", &[("model", "chat"), ("query", &u1)]).await;
    assert_eq!(n.as_i64(), Some(expect(users).len() as i64));
    let r = app.call(&admin, "delete_logs", &[("model", "chat"), ("query", &u1), ("confirm", "1")]).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "confirm");
    assert_eq!(app.call(&editor, "delete_logs", &[("model", "chat"), ("query", &u1), ("confirm", &n.to_string())]).await.status(), 403);
    assert_eq!(found(&app, &key, "user_id=u1").await, expect(users), "nothing deleted yet");

    let (_, before) = get(&app, &key, &format!("model=chat&{range}&trace_id=t1")).await;
    let t1 = before["logs"][0]["id"].as_i64().unwrap();
    let deleted = app.call_ok(&admin, "delete_logs", &[("model", "chat"), ("query", &u1), ("confirm", &n.to_string())]).await;
    assert_eq!(deleted.as_i64(), n.as_i64());
    // Gone from search, full text, detail and the user breakdown; the others stay.
    assert!(found(&app, &key, "user_id=u1").await.is_empty());
    assert_eq!(found(&app, &key, "").await, expect(|i| !users(i)));
    assert!(found(&app, &key, "q=call&user_id=u1").await.is_empty());
    assert_eq!(found(&app, &key, "q=upstream").await, expect(|i| i % 7 == 0 && !users(i)));
    let r = reqwest::Client::new().get(app.url(&format!("/api/v1/logs/{t1}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 404, "record 1 belonged to u1");
    let b: Value = admin
        .get(app.url(&format!("/api/v1/models/chat/breakdown?by=user&{range}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let values: Vec<&str> = b["rows"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert!(!values.contains(&"u1") && values.contains(&"u2"), "{values:?}");
    // Nothing left to delete.
    let r = app.call(&admin, "delete_logs", &[("model", "chat"), ("query", &u1), ("confirm", "0")]).await;
    assert_eq!(r.status(), 422);
});

both_backends!(searching_every_model_the_caller_may_read, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "chat").await;
    let key = seed(&app, "chat").await;
    let other: Vec<Value> = (0..3)
        .map(|i| json!({"model": "other", "timestamp": T0 + 5 * MIN + 30_000 + i, "trace_id": format!("o{i}"), "status": "error"}))
        .collect();
    assert_eq!(app.ingest(&key, &other).await.0, 200);
    let range = format!("from={T0}&to={}", T0 + N * MIN);
    let ids = |page: &Value| -> Vec<(String, i64, i64)> {
        page["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["model"].as_str().unwrap().to_string(), l["timestamp"].as_i64().unwrap(), l["id"].as_i64().unwrap()))
            .collect()
    };
    // No model: both models, merged newest first, counted together.
    let (status, page) = get(&app, &key, &format!("{range}&limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    let all = ids(&page);
    assert_eq!(all.len() as i64, N + 3);
    assert_eq!(page["count"].as_i64(), Some(N + 3));
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (b.1, b.2).cmp(&(a.1, a.2)));
    assert_eq!(all, sorted);
    assert_eq!(all.iter().filter(|l| l.0 == "other").count(), 3);
    let (_, errors) = get(&app, &key, &format!("{range}&status=error&limit=1000")).await;
    assert_eq!(errors["count"].as_i64(), Some(expect(is_error).len() as i64 + 3));
    // Pages across models: every log once, in order.
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let (_, p) = get(&app, &key, &format!("{range}&limit=6{before}")).await;
        seen.extend(ids(&p));
        match p["next"].as_str() {
            Some(c) => before = format!("&before={c}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    // Only readable models: a key limited to one, a viewer granted one, a viewer granted none.
    let limited = app.api_key(&[Scope::Read], &["other"]).await;
    let (_, p) = get(&app, &limited, &range).await;
    assert!(ids(&p).iter().all(|l| l.0 == "other") && p["count"] == 3, "{p}");
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    app.create_user(&admin, "none", "viewer", "nothing-password").await;
    app.grant(&admin, viewer_id, "chat", false).await;
    let viewer = app.login("vi", "viewer-password").await;
    let nobody = app.login("none", "nothing-password").await;
    let p: Value = viewer.get(app.url(&format!("/api/v1/logs?{range}&limit=1000"))).send().await.unwrap().json().await.unwrap();
    assert!(ids(&p).iter().all(|l| l.0 == "chat") && p["count"] == N, "the viewer sees chat only");
    let p: Value = nobody.get(app.url(&format!("/api/v1/logs?{range}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(p["count"], 0);
    let html = viewer.get(app.url(&format!("/logs?{range}&limit=1000"))).send().await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("data-log-id=").count() as i64, N.min(50), "the all-models page lists the viewer's logs");
    assert!(!html.contains(">other<"), "no row of the hidden model");
    // Export and tail take every readable model too.
    let body = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/logs/export?{range}&format=ndjson")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count() as i64, N + 3);
    let mut tail = reqwest::Client::new().get(app.url("/api/v1/logs/tail")).bearer_auth(&key).send().await.unwrap();
    read_events(&mut tail, |e| !e.is_empty()).await;
    let now = engine::now_ms();
    let fresh = [json!({"model": "chat", "timestamp": now, "trace_id": "new-chat"}), json!({"model": "other", "timestamp": now, "trace_id": "new-other"})];
    assert_eq!(app.ingest(&key, &fresh).await.0, 200);
    let events = read_events(&mut tail, |e| e.iter().filter(|(n, _)| n == "log").count() >= 2).await;
    let traces: Vec<String> = events
        .iter()
        .filter(|(n, _)| n == "log")
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(traces, ["new-chat", "new-other"]);
    // The model picker sends "all models" to /logs.
    let r = viewer.get(app.url("/logs/open?model=&status=error")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/logs?status=error");
});

both_backends!(csv_exports_do_not_carry_formulas, |app: TestApp| async move {
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let ts = engine::now_ms() - 60_000;
    let record = json!({
        "model": "sheet", "timestamp": ts, "message": "=HYPERLINK(\"http://evil.example\",\"open\")", "error_message": "+1+1",
        "user_id": "@SUM(A1)", "session_id": "-2+3", "trace_id": "\tx", "feedback": -1, "input_tokens": 3,
        "request": "=cmd|' /C calc'!A0", "response": "plain answer",
    });
    assert_eq!(app.ingest(&key, &[record]).await.0, 200);
    let range = format!("from={}&to={}", ts - 60_000, ts + 120_000);
    let url = app.url(&format!("/api/v1/logs/export?model=sheet&{range}&format=csv&payloads=true"));
    let body = reqwest::Client::new().get(url).bearer_auth(&key).send().await.unwrap().text().await.unwrap();
    let mut rows = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_string).collect();
    let row = rows.records().next().expect("one row").unwrap();
    let cell = |name: &str| row[header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {header:?}"))].to_string();
    assert_eq!(cell("message"), "'=HYPERLINK(\"http://evil.example\",\"open\")");
    assert_eq!(cell("error_message"), "'+1+1");
    assert_eq!(cell("user_id"), "'@SUM(A1)");
    assert_eq!(cell("session_id"), "'-2+3");
    assert_eq!(cell("trace_id"), "'\tx");
    assert_eq!(cell("request"), "'=cmd|' /C calc'!A0");
    assert_eq!(cell("response"), "plain answer");
    // Numbers stay numbers.
    assert_eq!((cell("feedback"), cell("input_tokens")), ("-1".to_string(), "3".to_string()));
    // A dashboard breakdown's values too (user breakdowns may be merged a moment later).
    let url = app.url(&format!("/api/v1/models/sheet/breakdown?by=user&format=csv&{range}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = reqwest::Client::new().get(&url).bearer_auth(&key).send().await.unwrap().text().await.unwrap();
        if text.lines().count() > 1 {
            assert!(text.lines().nth(1).unwrap().starts_with("'@SUM(A1),1,"), "{text}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no breakdown row: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
});

both_backends!(payload_words_are_found_only_by_those_who_may_read_payloads, |app: TestApp| async move {
    let admin = app.admin().await;
    app.create_model(&admin, "secret").await;
    let key = app.api_key(&[Scope::Ingest, Scope::Read], &[]).await;
    let ts = engine::now_ms() - 120_000;
    // One log alone (stored as a row) and a batch of 20 (stored in a block on SQLite).
    let single = json!({"model": "secret", "timestamp": ts, "message": "visible42 text", "request": "zebra42xq prompt", "response": "ok"});
    assert_eq!(app.ingest(&key, &[single]).await.0, 200);
    let batch: Vec<Value> = (0..20)
        .map(|i| json!({"model": "secret", "timestamp": ts + i, "message": if i == 3 { "msgword88 here" } else { "call" }, "request": "blockword77 asked"}))
        .collect();
    assert_eq!(app.ingest(&key, &batch).await.0, 200);
    let viewer_id = app.create_user(&admin, "vi", "viewer", "viewer-password").await;
    let editor_id = app.create_user(&admin, "ed", "editor", "editor-password").await;
    let reader_id = app.create_user(&admin, "pr", "viewer", "reader-password").await;
    app.grant(&admin, viewer_id, "secret", false).await;
    app.grant(&admin, editor_id, "secret", false).await;
    app.grant(&admin, reader_id, "secret", true).await;
    let viewer = app.login("vi", "viewer-password").await;
    let editor = app.login("ed", "editor-password").await;
    let reader = app.login("pr", "reader-password").await;
    let range = format!("model=secret&from={}&to={}", ts - 60_000, ts + 180_000);
    let count = |c: reqwest::Client, word: &'static str| {
        let url = app.url(&format!("/api/v1/logs?{range}&q={word}"));
        async move {
            let page: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            (page["count"].as_i64().unwrap(), page["logs"].as_array().unwrap().len() as i64)
        }
    };
    for (word, with_payloads) in [("zebra42xq", 1), ("blockword77", 20), ("visible42", 1), ("msgword88", 1)] {
        let in_messages = if word.starts_with("visible") || word.starts_with("msg") { with_payloads } else { 0 };
        assert_eq!(count(reader.clone(), word).await, (with_payloads, with_payloads), "{word} with payload access");
        assert_eq!(count(admin.clone(), word).await, (with_payloads, with_payloads), "{word} as admin");
        assert_eq!(count(viewer.clone(), word).await, (in_messages, in_messages), "{word} as a viewer without payload access");
        assert_eq!(count(editor.clone(), word).await, (in_messages, in_messages), "{word} as an editor without payload access");
        let (_, page) = get(&app, &key, &format!("{range}&q={word}")).await;
        assert_eq!(page["count"].as_i64(), Some(with_payloads), "{word} with a read key");
    }
    // The export, the server function behind the explorer and its HTML page say the same.
    let export = viewer.get(app.url(&format!("/api/v1/logs/export?{range}&q=zebra42xq&format=ndjson"))).send().await.unwrap();
    assert_eq!((export.status().as_u16(), export.text().await.unwrap().lines().count()), (200, 0));
    let export = reader.get(app.url(&format!("/api/v1/logs/export?{range}&q=zebra42xq&format=ndjson"))).send().await.unwrap();
    assert_eq!(export.text().await.unwrap().lines().count(), 1);
    let query = format!("from={}&to={}&q=blockword77", ts - 60_000, ts + 180_000);
    let page = app.call_ok(&viewer, "search_logs", &[("model", "secret"), ("query", &query)]).await;
    assert_eq!(page["page"]["count"].as_i64().or(page["count"].as_i64()), Some(0), "{page}");
    let html = viewer.get(app.url(&format!("/models/secret/logs?{query}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("0 matching logs"), "explorer page for a viewer");
});
