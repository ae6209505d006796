"""The load engine of ONE agent. It never imports Ray: the cluster layer wraps it."""
