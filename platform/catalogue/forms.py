from django import forms
from projects.permissions import editable_projects_for, scope_queryset

from catalogue.models import Beamtime, Cell, ChargeState, Dataset, Sample

DATE = forms.DateInput(attrs={"type": "date"})
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CatalogueForm(forms.ModelForm):
    """Project and link choices limited to what the user may edit or see."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if "project" in self.fields:
            self.fields["project"].queryset = editable_projects_for(user).distinct()
        for name, field in self.fields.items():
            if isinstance(field, forms.ModelChoiceField) and name != "project":
                field.queryset = scope_queryset(field.queryset, user)


class SampleForm(CatalogueForm):
    class Meta:
        model = Sample
        fields = [
            "project",
            "name",
            "material",
            "fabrication_method",
            "thickness_um",
            "composition",
            "mass_loading_mg_cm2",
            "nominal_porosity",
            "notes",
        ]


class CellForm(CatalogueForm):
    class Meta:
        model = Cell
        fields = [
            "project",
            "name",
            "format",
            "cathode",
            "counter_electrode",
            "separator",
            "electrolyte",
            "electrode_area_cm2",
            "li_concentration_mol_l",
            "assembly_date",
            "notes",
        ]
        widgets = {"assembly_date": DATE}


class ChargeStateForm(CatalogueForm):
    class Meta:
        model = ChargeState
        fields = [
            "project",
            "cell",
            "state",
            "cycle_number",
            "c_rate",
            "voltage_min_v",
            "voltage_max_v",
            "capacity_mah_g",
            "recorded_at",
            "notes",
        ]
        widgets = {"recorded_at": DATETIME}


class BeamtimeForm(CatalogueForm):
    class Meta:
        model = Beamtime
        fields = [
            "project",
            "facility",
            "beamline",
            "proposal",
            "start_date",
            "end_date",
            "beam_energy_kev",
            "detector",
            "scattering_angle_deg",
            "sample_to_pinhole_mm",
            "pinhole_to_detector_mm",
            "pixel_pitch_mm",
            "beam_axis",
            "notes",
        ]
        widgets = {"start_date": DATE, "end_date": DATE}


class DatasetForm(CatalogueForm):
    """Edit a dataset's description and links (files arrive through the upload page)."""

    class Meta:
        model = Dataset
        fields = ["project", "name", "kind", "cell", "charge_state", "beamtime", "region", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The file lives under its project's folder: a dataset does not move.
            self.fields["project"].disabled = True
            self.fields["project"].queryset = self.fields["project"].queryset.model.objects.filter(
                pk=self.instance.project_id
            )
