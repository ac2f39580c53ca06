"""HTTP endpoints owned by core: health, ping and the API root."""
