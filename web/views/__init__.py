"""Page views, one module per audience.  Shared helpers live in ``web.views.common``."""
