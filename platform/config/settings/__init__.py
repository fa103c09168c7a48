"""Settings modules: ``base`` (shared), ``local`` (default), ``test`` and ``production``."""
