//! spindle: keeps a Docker Compose host converged to the desired state in its repository.

pub mod api;
pub mod apply;
pub mod controller;
pub mod desired;
pub mod engine;
pub mod evidence;
pub mod health;
pub mod intent;
pub mod labels;
pub mod lock;
pub mod metrics;
pub mod observe;
pub mod pause;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod reconcile;
pub mod record;
pub mod redact;
pub mod runtime;
pub mod seen;
pub mod spec;
pub mod statedir;
pub mod statefile;
pub mod status;
pub mod verify;
