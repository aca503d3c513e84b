//! One module per page. Pages render what server functions return and nothing else.

mod account;
mod admin_ingest;
mod alerts;
mod admin_scrape;
mod admin_keys;
mod admin_models;
mod admin_users;
mod log_detail;
mod login;
mod model;
mod model_logs;
mod not_found;
mod overview;

pub use account::AccountPage;
pub use admin_ingest::AdminIngest;
pub use alerts::{AlertsPage, ChannelsPage, RuleEditPage};
pub use admin_scrape::AdminScrape;
pub use admin_keys::AdminKeys;
pub use admin_models::AdminModels;
pub use admin_users::AdminUsers;
pub use log_detail::LogDetailPage;
pub use login::LoginPage;
pub use model::ModelPage;
pub use model_logs::ModelLogsPage;
pub use not_found::NotFound;
pub use overview::Overview;
