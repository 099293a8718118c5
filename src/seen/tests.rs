//! Table tests of the recovery rule's memory: how it advances after a reconcile, and its file.
