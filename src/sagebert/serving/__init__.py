"""The inference servers: gunicorn + Flask (single model) and multi-model-server (multi-model)."""
