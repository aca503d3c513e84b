//! Authorisation: the one place that decides whether a principal may perform an action.
//!
//! Every server function, REST route, stream and export calls `Principal::authorize` (through
//! the `Engine` methods) before touching data. Nothing here trusts the UI to hide anything.
//! Models a principal may not see are reported as *not found*, so their existence does not leak.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::types::{Grant, Role};

/// Who is calling: a signed-in user, or the local operator using the CLI.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Option<i64>,
    pub username: String,
    pub role: Role,
    /// Model id → may view payloads. Ignored for admins, who see everything.
    grants: HashMap<i64, bool>,
}

/// Something a principal wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See a model, its dashboards and its logs (without payloads).
    ViewModel(i64),
    /// Read prompt/response payloads of a model.
    ViewPayloads(i64),
    /// Create or change alert rules and silences on a model.
    EditAlerts(i64),
    /// Users, models, grants, keys, channels and ingest rules.
    Administer,
}

impl Principal {
    pub fn user(user_id: i64, username: String, role: Role, grants: &[Grant]) -> Self {
        Principal {
            user_id: Some(user_id),
            username,
            role,
            grants: grants.iter().map(|g| (g.model_id, g.view_payloads)).collect(),
        }
    }

    /// The operator at the machine's shell (`modelwatch user …`): full rights, no session.
    pub fn operator() -> Self {
        Principal { user_id: None, username: "operator".into(), role: Role::Admin, grants: HashMap::new() }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn allows(&self, action: Action) -> bool {
        if self.is_admin() {
            return true;
        }
        match action {
            Action::ViewModel(m) => self.grants.contains_key(&m),
            Action::ViewPayloads(m) => self.grants.get(&m).copied().unwrap_or(false),
            Action::EditAlerts(m) => self.role == Role::Editor && self.grants.contains_key(&m),
            Action::Administer => false,
        }
    }

    /// Ok, or the error to return. A model the principal cannot even see is "not found";
    /// a visible model with an action beyond the role is "forbidden".
    pub fn authorize(&self, action: Action) -> Result<()> {
        if self.allows(action) {
            return Ok(());
        }
        match action {
            Action::ViewModel(_) => Err(Error::NotFound("model")),
            Action::ViewPayloads(m) | Action::EditAlerts(m) if !self.allows(Action::ViewModel(m)) => {
                Err(Error::NotFound("model"))
            }
            _ => Err(Error::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(model_id: i64, view_payloads: bool) -> Grant {
        Grant { model_id, model: format!("m{model_id}"), view_payloads }
    }

    #[test]
    fn matrix() {
        let admin = Principal::user(1, "a".into(), Role::Admin, &[]);
        let editor = Principal::user(2, "e".into(), Role::Editor, &[grant(10, false)]);
        let viewer = Principal::user(3, "v".into(), Role::Viewer, &[grant(10, true)]);
        let bare = Principal::user(4, "n".into(), Role::Viewer, &[]);

        for p in [&admin, &editor, &viewer] {
            assert!(p.allows(Action::ViewModel(10)), "{}", p.username);
        }
        assert!(!bare.allows(Action::ViewModel(10)));
        assert!(admin.allows(Action::ViewModel(11)));
        assert!(!editor.allows(Action::ViewModel(11)));
        assert!(!viewer.allows(Action::ViewModel(11)));

        assert!(editor.allows(Action::EditAlerts(10)));
        assert!(!editor.allows(Action::EditAlerts(11)));
        assert!(!viewer.allows(Action::EditAlerts(10)));

        assert!(viewer.allows(Action::ViewPayloads(10)));
        assert!(!editor.allows(Action::ViewPayloads(10)));

        assert!(admin.allows(Action::Administer));
        for p in [&editor, &viewer, &bare] {
            assert!(!p.allows(Action::Administer));
            assert!(matches!(p.authorize(Action::Administer), Err(Error::Forbidden)));
        }
        // Ungranted models do not leak their existence.
        assert!(matches!(viewer.authorize(Action::ViewModel(11)), Err(Error::NotFound(_))));
        assert!(matches!(viewer.authorize(Action::EditAlerts(11)), Err(Error::NotFound(_))));
        assert!(matches!(viewer.authorize(Action::EditAlerts(10)), Err(Error::Forbidden)));
    }
}
