"""gunicorn settings for the web container (behind nginx)."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# ASGI workers: the live event stream (/api/v1/events/) is an async view.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "uvicorn_worker.UvicornWorker")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# tus uploads stream large chunks; give them time.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = "*"
# gunicorn's control socket defaults to $HOME/.gunicorn, and the service user cannot write its
# home (/app); nothing here uses the control interface.
control_socket_disable = True
