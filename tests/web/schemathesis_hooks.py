"""schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.web.schemathesis_hooks``): send tus PATCH
bodies (``application/offset+octet-stream``) as raw bytes, like ``application/octet-stream``."""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
