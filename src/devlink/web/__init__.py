"""The web layer: REST API under /api/v1, webhooks under /hooks, server-rendered pages."""
