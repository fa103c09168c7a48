from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    name = "catalogue"
    verbose_name = "Catalogue"

    def ready(self) -> None:
        from projects import audit

        from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample

        for model in (Sample, Cell, ChargeState, Beamtime, Dataset):
            audit.register(model)

        from catalogue import signals

        signals.connect()
