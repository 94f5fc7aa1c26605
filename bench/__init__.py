"""relaygate's benchmark: see bench/README.md."""
