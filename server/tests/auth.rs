//! Login, cookies, throttling and session revocation, on SQLite and Postgres.

mod common;

use base64::Engine as _;
use common::{session_cookie, TestApp, ADMIN_PASSWORD, SECRET};

fn token_of(cookie: &str) -> String {
    cookie.split(';').next().unwrap().trim_start_matches("mw_session=").to_string()
}

/// GET /api/v1/me with exactly this session token and no cookie store.
async fn me_status(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/v1/me"))
        .header("cookie", format!("mw_session={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login_token(app: &TestApp, user: &str, password: &str) -> String {
    let resp = app.post_login(&app.client(), user, password).await;
    assert_eq!(resp.headers()["location"], "/");
    token_of(&session_cookie(&resp))
}

both_backends!(cookie_flags, |app: TestApp| async move {
    let resp = app.post_login(&app.client(), "admin", ADMIN_PASSWORD).await;
    let cookie = session_cookie(&resp);
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP must not set Secure: {cookie}");

    let tls = app
        .client()
        .post(app.url("/auth/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&tls).contains("Secure"), "TLS must set Secure");
});

both_backends!(same_error_for_unknown_user_and_wrong_password, |app: TestApp| async move {
    let wrong = app.post_login(&app.client(), "admin", "not-the-password").await;
    let unknown = app.post_login(&app.client(), "nobody", "not-the-password").await;
    assert_eq!(wrong.status(), 303);
    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(wrong.headers()["location"], unknown.headers()["location"]);
    assert!(wrong.headers()["location"].to_str().unwrap().starts_with("/login?error=1"));
    assert!(wrong.headers().get("set-cookie").is_none());
    // Usernames are case-insensitive.
    let client = app.login("ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
});

fn throttled(r: &reqwest::Response) -> bool {
    r.headers()["location"].to_str().unwrap().starts_with("/login?error=throttled")
}

// The tests reach the server from 127.0.0.1 only; other client addresses are played by calling
// `engine.login` (what the handler calls with the `ConnectInfo` address) directly.
both_backends!(throttles_per_user_and_address_then_per_address, |app: TestApp| async move {
    for _ in 0..5 {
        let r = app.post_login(&app.client(), "admin", "wrong-password").await;
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?error=1"));
    }
    // Locked from this address now, even with the right password ...
    let r = app.post_login(&app.client(), "admin", ADMIN_PASSWORD).await;
    assert!(throttled(&r));
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60);
    // ... but not from another one.
    app.engine.login("admin", ADMIN_PASSWORD, "198.51.100.7").await.expect("the admin's own address is not locked");

    // From the same address, many usernames: the per-address limit (30) trips too.
    let mut throttled_at = None;
    for i in 0..30 {
        if throttled(&app.post_login(&app.client(), &format!("user{i}"), "wrong-password").await) {
            throttled_at = Some(i);
            break;
        }
    }
    assert!(throttled_at.is_some(), "per-address throttling did not trigger");
    app.engine.login("admin", ADMIN_PASSWORD, "198.51.100.7").await.expect("other addresses are not affected");
});

// Anyone could otherwise lock the admin out: failures from an attacker's address must not block
// the right password from the admin's address, however many.
both_backends!(failures_from_elsewhere_do_not_lock_the_user_out, |app: TestApp| async move {
    for attacker in ["203.0.113.9", "203.0.113.10"] {
        for _ in 0..8 {
            let r = app.engine.login("admin", "wrong-password", attacker).await;
            assert!(matches!(r, Err(engine::Error::BadCredentials | engine::Error::TooManyRequests { .. })), "{r:?}");
        }
        let r = app.engine.login("admin", ADMIN_PASSWORD, attacker).await;
        assert!(matches!(r, Err(engine::Error::TooManyRequests { .. })), "the attacker's address is throttled: {r:?}");
    }
    let client = app.admin().await;
    assert_eq!(client.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
});

// Break-glass: an unlock (what `modelwatch user unlock` writes to the database) lifts the
// throttle at once, and a successful login forgives its address's failures.
both_backends!(unlock_and_success_clear_the_throttle, |app: TestApp| async move {
    for _ in 0..5 {
        app.post_login(&app.client(), "admin", "wrong-password").await;
    }
    assert!(throttled(&app.post_login(&app.client(), "admin", ADMIN_PASSWORD).await));
    let user = app.engine.unlock_user(&engine::Principal::operator(), "Admin").await.unwrap();
    assert_eq!(user.username, "admin");
    app.admin().await;
    // Success cleared the count for this address: four more failures do not lock.
    for _ in 0..4 {
        app.post_login(&app.client(), "admin", "wrong-password").await;
    }
    app.admin().await;
    assert!(matches!(
        app.engine.unlock_user(&engine::Principal::operator(), "nobody").await,
        Err(engine::Error::NotFound(_))
    ));
});

both_backends!(forged_and_expired_tokens_are_refused, |app: TestApp| async move {
    let token = login_token(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(me_status(&app, &token).await, 200);

    // Tampered: change the payload (user id 1 → 2) and keep the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap().replace("\"sub\":\"1\"", "\"sub\":\"2\"");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload.as_bytes()), parts[2]);
    assert_eq!(me_status(&app, &tampered).await, 401, "tampered payload");
    let mut sig = parts[2].to_string();
    sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
    assert_eq!(me_status(&app, &format!("{}.{}.{sig}", parts[0], parts[1])).await, 401, "tampered signature");

    // alg: none, with the genuine claims and no signature.
    let none_header = b64.encode(br#"{"typ":"JWT","alg":"none"}"#);
    assert_eq!(me_status(&app, &format!("{none_header}.{}.", parts[1])).await, 401, "alg none");

    // Expired, but correctly signed with the instance secret and naming a live session.
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let now = engine::now_ms() / 1000;
    let expired = serde_json::json!({"sub": "1", "sid": claims["sid"], "iat": now - 7200, "exp": now - 3600});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &expired, &key).unwrap();
    assert_eq!(me_status(&app, &expired).await, 401, "expired");

    // Correctly signed and unexpired, but for a session that does not exist.
    let forged = serde_json::json!({"sub": "1", "sid": "00000000000000000000000000000000", "iat": now, "exp": now + 3600});
    let forged = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &forged, &key).unwrap();
    assert_eq!(me_status(&app, &forged).await, 401, "unknown session");

    assert_eq!(me_status(&app, "garbage").await, 401);
    assert_eq!(me_status(&app, &token).await, 200, "the genuine token still works");
});

both_backends!(logout_password_change_and_disable_end_sessions, |app: TestApp| async move {
    let admin = app.admin().await;
    let id = app.create_user(&admin, "carol", "viewer", "carol-password-1").await;

    // Logout ends that session only.
    let t1 = login_token(&app, "carol", "carol-password-1").await;
    let t2 = login_token(&app, "carol", "carol-password-1").await;
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/auth/logout"))
        .header("cookie", format!("mw_session={t1}"))
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(session_cookie(&resp).contains("Max-Age=0"), "logout clears the cookie");
    assert_eq!(me_status(&app, &t1).await, 401, "after logout");
    assert_eq!(me_status(&app, &t2).await, 200, "other session unaffected by logout");

    // Own password change ends every session of the user.
    let carol = app.login("carol", "carol-password-1").await;
    let wrong = app
        .call(&carol, "change_password", &[("current_password", "nope-nope"), ("new_password", "carol-password-2")])
        .await;
    assert_eq!(wrong.status(), 422);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["field"], "current_password");
    app.call_ok(&carol, "change_password", &[("current_password", "carol-password-1"), ("new_password", "carol-password-2")])
        .await;
    assert_eq!(me_status(&app, &t2).await, 401, "after password change");
    assert_eq!(carol.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    let t3 = login_token(&app, "carol", "carol-password-2").await;

    // Admin reset ends sessions too.
    app.call_ok(&admin, "reset_password", &[("id", &id.to_string()), ("password", "carol-password-3")]).await;
    assert_eq!(me_status(&app, &t3).await, 401, "after admin reset");
    let t4 = login_token(&app, "carol", "carol-password-3").await;

    // Disabling ends sessions and blocks login with the generic error.
    app.call_ok(&admin, "update_user", &[("id", &id.to_string()), ("role", "viewer"), ("disabled", "on")]).await;
    assert_eq!(me_status(&app, &t4).await, 401, "after disable");
    let r = app.post_login(&app.client(), "carol", "carol-password-3").await;
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?error=1"));

    // Re-enabled: may log in again (old sessions stay dead).
    app.call_ok(&admin, "update_user", &[("id", &id.to_string()), ("role", "viewer")]).await;
    assert_eq!(me_status(&app, &t4).await, 401);
    login_token(&app, "carol", "carol-password-3").await;
});

both_backends!(admin_cannot_lock_themselves_out, |app: TestApp| async move {
    let admin = app.admin().await;
    let resp = app.call(&admin, "update_user", &[("id", "1"), ("role", "viewer")]).await;
    assert_eq!(resp.status(), 422);
    let resp = app.call(&admin, "update_user", &[("id", "1"), ("role", "admin"), ("disabled", "on")]).await;
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "disabled");
});

// The login form's `next` is sent form-encoded, so the server sees `/\t/evil.example` for the raw
// tab and `/%09/evil.example` for the percent-encoded one; browsers drop the tab and would land on
// `//evil.example`. Neither may leave the site, on success or failure, nor through `/theme`.
both_backends!(login_next_cannot_leave_the_site, |app: TestApp| async move {
    // A local path with a query survives.
    let form = [("username", "admin"), ("password", ADMIN_PASSWORD), ("next", "/models/m?range=24h")];
    let ok = app.client().post(app.url("/auth/login")).form(&form).send().await.unwrap();
    assert_eq!(ok.headers()["location"], "/models/m?range=24h");
    for next in ["/\t/evil.example", "/%09/evil.example", "/%2F%2Fevil.example", "/%5Cevil.example", "\\/evil.example"] {
        let form = [("username", "admin"), ("password", ADMIN_PASSWORD), ("next", next)];
        let ok = app.client().post(app.url("/auth/login")).form(&form).send().await.unwrap();
        assert_eq!(ok.status(), 303);
        assert_eq!(ok.headers()["location"], "/", "next={next:?}");
        session_cookie(&ok);

        let form = [("username", "admin"), ("password", "wrong-password"), ("next", next)];
        let failed = app.client().post(app.url("/auth/login")).form(&form).send().await.unwrap();
        assert_eq!(failed.headers()["location"], "/login?error=1&next=%2F", "next={next:?}");

        let theme = app.client().get(app.url("/theme")).query(&[("next", next)]).send().await.unwrap();
        assert_eq!(theme.status(), 303);
        assert_eq!(theme.headers()["location"], "/", "theme next={next:?}");
    }
});
