//! Storage and engine behaviour, run against SQLite and Postgres alike.

use engine::store::{self, NewModel, NewUser, Store};
use engine::testing::{fresh_database_url, Backend};
use engine::{AuthSettings, Engine, Error, ModelInput, Principal, Role, SecretKey};

macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = fresh_database_url(Backend::Sqlite, dir.path()).await.unwrap();
                ($body)(url).await;
            }
            #[tokio::test]
            async fn postgres() {
                let dir = tempfile::tempdir().unwrap();
                if let Some(url) = fresh_database_url(Backend::Postgres, dir.path()).await {
                    ($body)(url).await;
                }
            }
        }
    };
}

fn secret() -> SecretKey {
    SecretKey::new(vec![42; 32]).unwrap()
}

both_backends!(migrations_apply_once_and_ready, |url: String| async move {
    let s = store::open(&url).await.unwrap();
    s.ready().await.unwrap();
    drop(s);
    // Opening again re-runs nothing and stays ready.
    let s = store::open(&url).await.unwrap();
    s.ready().await.unwrap();
    assert_eq!(s.count_users().await.unwrap(), 0);
});

both_backends!(users_are_unique_case_insensitively, |url: String| async move {
    let s = store::open(&url).await.unwrap();
    let u = s.create_user(NewUser { username: "Alice", password_hash: "h", role: Role::Editor, now_ms: 5 }).await.unwrap();
    assert_eq!(s.user_by_name("alice").await.unwrap().unwrap().user, u);
    assert_eq!(s.user_by_name("ALICE").await.unwrap().unwrap().password_hash, "h");
    let dup = s.create_user(NewUser { username: "aLiCe", password_hash: "h", role: Role::Viewer, now_ms: 6 }).await;
    assert!(matches!(dup, Err(Error::Invalid { ref field, .. }) if field == "username"), "{dup:?}");
    s.set_user_role(u.id, Role::Admin).await.unwrap();
    s.set_user_disabled(u.id, true).await.unwrap();
    let again = s.user_by_id(u.id).await.unwrap().unwrap().user;
    assert_eq!((again.role, again.disabled), (Role::Admin, true));
    assert_eq!(s.list_users().await.unwrap().len(), 1);
});

both_backends!(sessions_expire_revoke_and_follow_the_user, |url: String| async move {
    let s = store::open(&url).await.unwrap();
    let u = s.create_user(NewUser { username: "bob", password_hash: "h", role: Role::Viewer, now_ms: 0 }).await.unwrap();
    s.create_session("s1", u.id, 100, 1_000).await.unwrap();
    s.create_session("s2", u.id, 100, 1_000).await.unwrap();
    assert_eq!(s.session_owner("s1", 500).await.unwrap().unwrap().user.id, u.id);
    assert!(s.session_owner("s1", 1_000).await.unwrap().is_none(), "expired at expires_at");
    assert!(s.session_owner("nope", 500).await.unwrap().is_none());
    s.revoke_session("s1", 600).await.unwrap();
    assert!(s.session_owner("s1", 700).await.unwrap().is_none());
    assert!(s.session_owner("s2", 700).await.unwrap().is_some());
    s.set_user_disabled(u.id, true).await.unwrap();
    assert!(s.session_owner("s2", 700).await.unwrap().is_none(), "disabled user");
    s.set_user_disabled(u.id, false).await.unwrap();
    s.revoke_user_sessions(u.id, 800).await.unwrap();
    assert!(s.session_owner("s2", 900).await.unwrap().is_none());
});

both_backends!(models_and_grants, |url: String| async move {
    let s = store::open(&url).await.unwrap();
    let u = s.create_user(NewUser { username: "vic", password_hash: "h", role: Role::Viewer, now_ms: 0 }).await.unwrap();
    let m1 = s.create_model(NewModel { name: "m1", display_name: "M1", description: "", now_ms: 1 }).await.unwrap();
    let m2 = s.create_model(NewModel { name: "m2", display_name: "M2", description: "d", now_ms: 2 }).await.unwrap();
    let dup = s.create_model(NewModel { name: "m1", display_name: "x", description: "", now_ms: 3 }).await;
    assert!(matches!(dup, Err(Error::Invalid { ref field, .. }) if field == "name"), "{dup:?}");
    assert_eq!(s.model_by_name("m2").await.unwrap().unwrap(), m2);
    s.update_model(m1.id, "Model one", "first").await.unwrap();
    assert_eq!(s.model_by_name("m1").await.unwrap().unwrap().display_name, "Model one");
    assert_eq!(s.list_models().await.unwrap().len(), 2);

    s.upsert_grant(u.id, m1.id, false).await.unwrap();
    s.upsert_grant(u.id, m1.id, true).await.unwrap(); // updates, does not duplicate
    s.upsert_grant(u.id, m2.id, false).await.unwrap();
    let grants = s.grants_of_user(u.id).await.unwrap();
    assert_eq!(grants.len(), 2);
    assert!(grants[0].view_payloads && grants[0].model == "m1");
    assert_eq!(s.grants_on_model(m1.id).await.unwrap()[0].username, "vic");
    s.delete_grant(u.id, m1.id).await.unwrap();
    assert_eq!(s.grants_of_user(u.id).await.unwrap().len(), 1);
    // Foreign keys are enforced: no grant for a model that does not exist.
    assert!(s.upsert_grant(u.id, 999_999, false).await.is_err());
});

both_backends!(engine_bootstrap_visibility_and_authorisation, |url: String| async move {
    let e = Engine::open(&url, &secret(), AuthSettings::default()).await.unwrap();
    assert!(e.bootstrap_admin(None).await.unwrap().is_some(), "first start generates a password");
    assert!(e.bootstrap_admin(None).await.unwrap().is_none(), "only once");
    let op = Principal::operator();
    for name in ["a", "b"] {
        e.create_model(&op, ModelInput { name: name.into(), ..Default::default() }).await.unwrap();
    }
    let (viewer, _) = e.create_user(&op, "vera", Role::Viewer, Some("vera-password")).await.unwrap();
    e.grant(&op, viewer.id, "a", false).await.unwrap();

    let session = e.login("vera", "vera-password", "127.0.0.1").await.unwrap();
    let p = e.authenticate(&session.token).await.unwrap();
    let visible: Vec<String> = e.list_models(&p).await.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(visible, ["a"]);
    assert!(e.get_model(&p, "a").await.is_ok());
    assert!(matches!(e.get_model(&p, "b").await, Err(Error::NotFound(_))));
    assert!(matches!(e.list_users(&p).await, Err(Error::Forbidden)));
    assert!(matches!(
        e.create_model(&p, ModelInput { name: "c".into(), ..Default::default() }).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(e.login("vera", "wrong-password", "127.0.0.1").await, Err(Error::BadCredentials)));
    assert!(matches!(e.login("nobody", "wrong-password", "127.0.0.1").await, Err(Error::BadCredentials)));
    e.logout(&session.token).await.unwrap();
    assert!(matches!(e.authenticate(&session.token).await, Err(Error::Unauthenticated)));
});

// The writer answers a job without records (nothing to commit) and stops on shutdown; later
// submits are refused.
both_backends!(writer_answers_empty_jobs_and_stops, |url: String| async move {
    let s: std::sync::Arc<dyn Store> = store::open(&url).await.unwrap().into();
    let w = engine::ingest::writer::Writer::start(s, Default::default());
    w.submit(Vec::new(), Vec::new()).await.unwrap();
    w.flush_breakdowns().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), w.shutdown()).await.expect("shutdown returns");
    assert!(matches!(w.submit(Vec::new(), Vec::new()).await, Err(Error::Unavailable)));
});
