from reviews.api.views import ReviewLinkViewSet


def register(router) -> None:
    router.register("review-links", ReviewLinkViewSet, basename="reviewlink")
