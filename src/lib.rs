//! spindle: keeps a Docker Compose host converged to the desired state in its repository.

pub mod desired;
pub mod redact;
