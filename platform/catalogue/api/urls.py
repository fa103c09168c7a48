from catalogue.api.views import (
    BeamtimeViewSet,
    CellViewSet,
    ChargeStateViewSet,
    DatasetViewSet,
    SampleViewSet,
)


def register(router) -> None:
    router.register("samples", SampleViewSet, basename="sample")
    router.register("cells", CellViewSet, basename="cell")
    router.register("charge-states", ChargeStateViewSet, basename="chargestate")
    router.register("beamtimes", BeamtimeViewSet, basename="beamtime")
    router.register("datasets", DatasetViewSet, basename="dataset")
