"""The request path of AuraX Edge Proxy: config, auth, channel choice, forwarding, usage, translation."""
