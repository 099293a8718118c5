//! Docker-free translation of a compose service into the engine's create bodies (container, network, volume), and the comparison used to adopt containers Compose created.
