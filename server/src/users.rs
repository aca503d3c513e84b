//! `modelwatch user add|passwd|list|unlock`: account administration from the machine's shell, acting
//! as the operator (full rights) through the same engine operations the admin pages use.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context, Result};
use engine::{AuthSettings, Engine, Principal, Role};

use crate::cli::UserCommand;
use crate::config::Config;

pub async fn run(config: &Config, cmd: UserCommand) -> Result<()> {
    let engine = Engine::open(&config.database_url, &config.secret, AuthSettings::default())
        .await
        .with_context(|| format!("cannot open the database ({})", crate::startup::redact_url(&config.database_url)))?;
    let op = Principal::operator();
    match cmd {
        UserCommand::Add { name, role, password_stdin } => {
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let password = if password_stdin { Some(read_password()?) } else { None };
            let (user, generated) = engine.create_user(&op, &name, role, password.as_deref()).await.map_err(explain)?;
            println!("created user {} ({})", user.username, user.role);
            if let Some(pw) = generated {
                println!("password: {pw}");
            }
        }
        UserCommand::Passwd { name, password_stdin } => {
            let user = engine.user_by_name(&op, &name).await.map_err(explain)?;
            let password = if password_stdin { Some(read_password()?) } else { None };
            let generated = engine.reset_password(&op, user.id, password.as_deref()).await.map_err(explain)?;
            println!("password of {} changed; their sessions have ended", user.username);
            if let Some(pw) = generated {
                println!("password: {pw}");
            }
        }
        UserCommand::Unlock { name } => {
            let user = engine.unlock_user(&op, &name).await.map_err(explain)?;
            println!("{} unlocked: failed logins so far no longer count", user.username);
        }
        UserCommand::List => {
            println!("{:<24} {:<8} {:<9} models", "username", "role", "state");
            for u in engine.list_users(&op).await.map_err(explain)? {
                let models = if u.user.role == Role::Admin {
                    "(all)".to_string()
                } else {
                    u.grants.iter().map(|g| g.model.as_str()).collect::<Vec<_>>().join(",")
                };
                let state = if u.user.disabled { "disabled" } else { "active" };
                println!("{:<24} {:<8} {:<9} {}", u.user.username, u.user.role, state, models);
            }
        }
    }
    Ok(())
}

/// One line from standard input; prompts without echo when it is a terminal.
fn read_password() -> Result<String> {
    let pw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        bail!("no password given on standard input");
    }
    Ok(pw)
}

pub(crate) fn explain(e: engine::Error) -> anyhow::Error {
    match e.field() {
        Some(field) => anyhow::anyhow!("{} ({field})", e.public_message()),
        None => anyhow::anyhow!(e),
    }
}
