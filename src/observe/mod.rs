//! Observing the engine: the bollard connection, API version negotiation, and a project's containers, networks, volumes and images.

pub mod snapshot;
