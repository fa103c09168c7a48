from jobs.api.views import AnalysisJobViewSet, ResultViewSet


def register(router) -> None:
    router.register("jobs", AnalysisJobViewSet, basename="job")
    router.register("results", ResultViewSet, basename="result")
