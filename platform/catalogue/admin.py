from django.contrib import admin

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "material", "fabrication_method", "thickness_um"]
    list_filter = ["fabrication_method", "material", "project"]
    search_fields = ["name", "material", "composition"]


@admin.register(Cell)
class CellAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "format", "cathode", "assembly_date"]
    list_filter = ["format", "project"]
    search_fields = ["name", "electrolyte"]


@admin.register(ChargeState)
class ChargeStateAdmin(admin.ModelAdmin):
    list_display = ["cell", "state", "cycle_number", "c_rate", "capacity_mah_g", "project"]
    list_filter = ["state", "project"]


@admin.register(Beamtime)
class BeamtimeAdmin(admin.ModelAdmin):
    list_display = ["facility", "beamline", "proposal", "start_date", "beam_energy_kev", "project"]
    list_filter = ["facility", "beamline"]
    search_fields = ["facility", "beamline", "proposal"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "status", "size", "created_at"]
    list_filter = ["kind", "status", "project"]
    search_fields = ["name", "sha256"]
    readonly_fields = ["size", "sha256", "created_at", "updated_at"]
