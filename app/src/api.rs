//! Server functions: the UI's only way to data. Each one is thin: find the caller, let the
//! engine authorise and act, map errors. URLs are fixed (`/fn/<name>`) so they are stable for
//! tests and no-JavaScript form posts.

use engine::{Me, Model, UserGrant, UserWithGrants};
use leptos::prelude::*;

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::session::caller;

/// The signed-in user, or `None` for an anonymous visitor.
#[server(prefix = "/fn", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    match caller().await {
        Ok((engine, p)) => Ok(Some(engine.me(&p)?)),
        Err(e) if e.is_unauthenticated() => {
            crate::session::set_status(200);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[server(prefix = "/fn", endpoint = "list_models")]
pub async fn list_models() -> Result<Vec<Model>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_models(&p).await?)
}

/// Admins: one page of the registry (50 models, by name), with the model limits and what
/// ingest refused under them.
#[server(prefix = "/fn", endpoint = "admin_models")]
pub async fn admin_models(#[server(default)] q: String, #[server(default)] page: Option<usize>) -> Result<engine::ModelsPage, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.models_page(&p, &q, page.unwrap_or(1), ADMIN_MODELS_PER_PAGE).await?)
}

/// Rows of the admin's model list per page: each row reads its grants, so pages stay small.
pub const ADMIN_MODELS_PER_PAGE: usize = 50;

#[server(prefix = "/fn", endpoint = "get_model")]
pub async fn get_model(name: String) -> Result<Model, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.get_model(&p, &name).await?)
}

#[server(prefix = "/fn", endpoint = "create_model")]
pub async fn create_model(name: String, display_name: Option<String>, description: Option<String>) -> Result<Model, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.create_model(&p, engine::ModelInput { name, display_name, description }).await?)
}

#[server(prefix = "/fn", endpoint = "update_model")]
pub async fn update_model(name: String, display_name: String, description: String) -> Result<Model, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.update_model(&p, &name, &display_name, &description).await?)
}

#[server(prefix = "/fn", endpoint = "model_grants")]
pub async fn model_grants(name: String) -> Result<Vec<UserGrant>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.model_grants(&p, &name).await?)
}

#[server(prefix = "/fn", endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserWithGrants>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.list_users(&p).await?)
}

/// Creates a user. Returns the generated password when none was given (shown once).
#[server(prefix = "/fn", endpoint = "create_user")]
pub async fn create_user(username: String, role: String, password: Option<String>) -> Result<Option<String>, AppError> {
    let (engine, p) = caller().await?;
    let role = parse_role(&role)?;
    let (_, generated) = engine.create_user(&p, &username, role, password.as_deref()).await?;
    Ok(generated)
}

/// Changes a user's role and enabled state (a checkbox: absent means enabled).
#[server(prefix = "/fn", endpoint = "update_user")]
pub async fn update_user(id: i64, role: String, disabled: Option<String>) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    let role = parse_role(&role)?;
    engine.set_user_role(&p, id, role).await?;
    engine.set_user_disabled(&p, id, disabled.is_some()).await?;
    Ok(())
}

/// Sets a user's password; with none given, generates one and returns it (shown once).
#[server(prefix = "/fn", endpoint = "reset_password")]
pub async fn reset_password(id: i64, password: Option<String>) -> Result<Option<String>, AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.reset_password(&p, id, password.as_deref()).await?)
}

#[server(prefix = "/fn", endpoint = "grant_model")]
pub async fn grant_model(user_id: i64, model: String, view_payloads: Option<String>) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.grant(&p, user_id, &model, view_payloads.is_some()).await?)
}

#[server(prefix = "/fn", endpoint = "revoke_model")]
pub async fn revoke_model(user_id: i64, model: String) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    Ok(engine.revoke(&p, user_id, &model).await?)
}

/// Changes the caller's own password. All their sessions end, this one included.
#[server(prefix = "/fn", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    let (engine, p) = caller().await?;
    engine.change_own_password(&p, &current_password, &new_password).await?;
    crate::session::expire_cookie_in_response();
    leptos_axum::redirect("/login?changed=1");
    Ok(())
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<engine::Role, AppError> {
    role.parse().map_err(|m: String| AppError::from(engine::Error::invalid("role", m)))
}
