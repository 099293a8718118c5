//! Table tests of the spec module against inspect documents captured from Docker Engine 20.10 and Compose v5.
