"""Skills shipped with a2a-server: plugins that import only ``a2a_server``'s public skill API."""
