//! The `modelwatch` binary itself: first start, user administration, configuration errors,
//! graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelwatch");

fn cmd(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MODELWATCH_DATA_DIR", data_dir)
        .env("MODELWATCH_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    c
}

/// Runs a CLI command with `stdin`; returns (success, stdout, stderr).
fn run(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = cmd(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Starts `modelwatch serve`, reads stderr until it listens; returns the child, the address and what it printed.
fn serve(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Child, String, String) {
    let mut c = cmd(data_dir);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let mut child = c.arg("serve").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not start: {printed}");
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("server exited: {printed}");
        }
        printed.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().to_string();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return (child, addr, printed);
        }
    }
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn first_start_prints_a_working_admin_password_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, printed) = serve(dir.path(), &[]);
    let password = printed
        .split("created user 'admin' with password ")
        .nth(1)
        .expect("first start prints the admin password")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client
        .post(format!("http://{addr}/auth/login"))
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(client.get(format!("http://{addr}/api/v1/me")).send().await.unwrap().status(), 200);
    // An open live tail (a stream that never ends by itself) does not hold the shutdown up.
    let mut tail = client.get(format!("http://{addr}/api/v1/logs/tail")).send().await.unwrap();
    assert_eq!(tail.status(), 200);
    assert!(String::from_utf8_lossy(&tail.chunk().await.unwrap().unwrap()).contains("event: ready"));
    let status = sigterm(&mut child);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(!matches!(tail.chunk().await, Ok(Some(_))), "the tail stream ended");

    // The second start does not create or print a password again, but says how to log in.
    let (mut child, _, printed) = serve(dir.path(), &[]);
    assert!(!printed.contains(&password));
    assert!(!printed.contains("created user"));
    assert!(printed.contains("Log in at http://"));
    sigterm(&mut child);

    // The generated secret key is kept with mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn user_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = run(d, &["user", "add", "alice", "--role", "editor", "--password-stdin"], "alice-password\n");
    assert!(ok, "{err}");
    assert!(out.contains("created user alice (editor)"), "{out}");

    let (ok, out, _) = run(d, &["user", "add", "bob"], "");
    assert!(ok);
    assert!(out.contains("password: "), "generated password printed: {out}");

    let (ok, _, err) = run(d, &["user", "add", "alice", "--password-stdin"], "another-password\n");
    assert!(!ok);
    assert!(err.contains("already exists") && err.contains("username"), "{err}");
    let (ok, _, err) = run(d, &["user", "add", "carl", "--role", "wizard"], "");
    assert!(!ok);
    assert!(err.contains("unknown role"), "{err}");
    let (ok, _, err) = run(d, &["user", "add", "dan", "--password-stdin"], "short\n");
    assert!(!ok);
    assert!(err.contains("at least 8"), "{err}");

    let (ok, out, _) = run(d, &["user", "passwd", "alice"], "");
    assert!(ok);
    assert!(out.contains("password: "));
    let (ok, _, err) = run(d, &["user", "passwd", "nobody"], "");
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    let (ok, out, _) = run(d, &["user", "list"], "");
    assert!(ok);
    assert!(out.contains("alice") && out.contains("editor") && out.contains("bob") && out.contains("viewer"), "{out}");
}

/// `user unlock` runs in its own process while the server runs: the unlock goes through the database.
#[tokio::test]
async fn user_unlock_lifts_login_throttling_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let password = "admin-password-1";
    let (mut child, addr, _) = serve(dir.path(), &[("MODELWATCH_ADMIN_PASSWORD", password)]);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |pw: &'static str| {
        let client = client.clone();
        let url = format!("http://{addr}/auth/login");
        async move {
            let r = client.post(url).form(&[("username", "admin"), ("password", pw)]).send().await.unwrap();
            r.headers()["location"].to_str().unwrap().to_string()
        }
    };
    for _ in 0..5 {
        assert!(login("wrong-password").await.starts_with("/login?error=1"));
    }
    assert!(login("admin-password-1").await.starts_with("/login?error=throttled"));

    let (ok, out, err) = run(dir.path(), &["user", "unlock", "admin"], "");
    assert!(ok, "{err}");
    assert!(out.contains("admin unlocked"), "{out}");
    assert_eq!(login("admin-password-1").await, "/");

    let (ok, _, err) = run(dir.path(), &["user", "unlock", "nobody"], "");
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");
    sigterm(&mut child);
}

#[test]
fn invalid_configuration_fails_with_a_message_that_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let check = |env: &[(&str, &str)], expect: &str| {
        let mut c = cmd(dir.path());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.args(["user", "list"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} should fail");
        assert!(err.contains(expect), "{env:?}: expected {expect:?} in {err}");
    };
    check(&[("MODELWATCH_DATABASE_URL", "mysql://localhost/x")], "must start with sqlite:// or postgres://");
    check(&[("MODELWATCH_SECRET_KEY", "too-short")], "MODELWATCH_SECRET_KEY must be at least 32");
    check(&[("MODELWATCH_LISTEN", "not-an-address")], "invalid value 'not-an-address' for '--listen");
    check(&[("MODELWATCH_ADMIN_PASSWORD", "short")], "MODELWATCH_ADMIN_PASSWORD must be at least 8");
    check(&[("MODELWATCH_ALLOW_PRIVATE_TARGETS", "10.0.0.0/8,bogus")], "\"bogus\" is not a CIDR range");
    check(&[("MODELWATCH_ALLOW_PRIVATE_TARGETS", "169.254.169.254/32")], "never contacts");
    // An unreachable database names the problem, and the password in its URL is never echoed.
    let out = cmd(dir.path())
        .env("MODELWATCH_DATABASE_URL", "postgres://nobody:hunter2hunter2@127.0.0.1:1/none")
        .args(["user", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot open the database") && err.contains("nobody:***@"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
