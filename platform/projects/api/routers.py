"""The one router every app registers its API viewsets on."""

from rest_framework.routers import DefaultRouter


class ApiRouter(DefaultRouter):
    """DefaultRouter without format-suffix routes.

    ``DefaultRouter`` would add ``.json``/``.api`` variants of every route (``/datasets/1.json``,
    ``/jobs/kinds.json``) whose views receive a ``format`` keyword that custom actions do not
    take. The API speaks JSON only (content negotiation through ``Accept``), so the suffixed
    routes are left out and such paths answer 404.
    """

    include_format_suffixes = False
