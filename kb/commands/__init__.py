"""One module per `kb` command; each exposes ``register(app)``."""
