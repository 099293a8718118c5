//! Table tests for the canonical, defaults and path stages.
