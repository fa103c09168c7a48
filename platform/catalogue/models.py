"""The experiment catalogue: electrodes (samples), coin cells, charge states, beamtimes, datasets.

Every object has a direct ``project`` foreign key so that scoping is one join. Links between
catalogue objects are RESTRICTed: deleting a sample that cells use, or a cell that datasets
describe, is refused with a message instead of silently deleting data.
"""

import math
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from projects import store
from projects.models import Project

from analysis_engine.io.sniff import DATASET_KINDS


class ProjectObject(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    url_name: str = ""

    def get_absolute_url(self) -> str:
        return reverse(f"catalogue:{self.url_name}_detail", args=[self.pk])

    def _check_same_project(self, **links) -> None:
        errors = {}
        for field, obj in links.items():
            if obj is not None and self.project_id and obj.project_id != self.project_id:
                errors[field] = f"This {obj._meta.verbose_name} belongs to another project."
        if errors:
            raise ValidationError(errors)


class FabricationMethod(models.TextChoices):
    DIRECTIONAL_ICE_TEMPLATING = "dit", "Directional ice templating"
    SLURRY_CASTING = "slurry", "Slurry casting"
    OTHER = "other", "Other"


class Sample(ProjectObject):
    """An electrode, e.g. a directional-ice-templated NMC811 cathode 600 um thick."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
    name = models.CharField(max_length=200)
    material = models.CharField(max_length=100, help_text="Active material, e.g. NMC811")
    fabrication_method = models.CharField(
        max_length=16, choices=FabricationMethod.choices, default=FabricationMethod.OTHER
    )
    thickness_um = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], verbose_name="thickness (um)"
    )
    composition = models.CharField(
        max_length=200,
        blank=True,
        help_text="Mass ratios, e.g. NMC811:C65:PVDF 90:5:5",
    )
    mass_loading_mg_cm2 = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0)],
        verbose_name="mass loading (mg/cm2)",
    )
    nominal_porosity = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Volume fraction 0..1",
    )

    url_name = "sample"

    class Meta:
        ordering = ["project", "name", "pk"]

    def __str__(self) -> str:
        return self.name


class Cell(ProjectObject):
    """A coin cell built from a cathode sample."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="cells")
    name = models.CharField(max_length=200)
    format = models.CharField(max_length=50, default="CR2032")
    cathode = models.ForeignKey(Sample, on_delete=models.RESTRICT, related_name="cells")
    counter_electrode = models.CharField(max_length=100, blank=True, default="Li metal")
    separator = models.CharField(max_length=100, blank=True)
    electrolyte = models.CharField(max_length=200, blank=True)
    assembly_date = models.DateField(null=True, blank=True)
    # what the EIS analysis needs to turn the Warburg coefficient into D_overall
    electrode_area_cm2 = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1e-6)],
        verbose_name="electrode area (cm2)",
        help_text="Geometric area of the cathode disc, e.g. 1.13 for a 12 mm disc",
    )
    li_concentration_mol_l = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1e-9)],
        verbose_name="Li+ concentration (mol/L)",
        help_text="Li+ concentration of the electrolyte, e.g. 1.0 for 1 M LiPF6",
    )

    url_name = "cell"

    class Meta:
        ordering = ["project", "name", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self._check_same_project(cathode=getattr(self, "cathode", None))


class ChargeStateKind(models.TextChoices):
    PRISTINE = "pristine", "Pristine"
    CHARGED = "charged", "Charged"
    DISCHARGED = "discharged", "Discharged"
    OTHER = "other", "Other"


class ChargeState(ProjectObject):
    """The electrochemical state of a cell when it was measured."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="charge_states")
    cell = models.ForeignKey(Cell, on_delete=models.RESTRICT, related_name="charge_states")
    state = models.CharField(
        max_length=16, choices=ChargeStateKind.choices, default=ChargeStateKind.PRISTINE
    )
    cycle_number = models.PositiveIntegerField(default=0)
    c_rate = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    voltage_min_v = models.FloatField(null=True, blank=True, verbose_name="lower voltage (V)")
    voltage_max_v = models.FloatField(null=True, blank=True, verbose_name="upper voltage (V)")
    capacity_mah_g = models.FloatField(
        null=True, blank=True, verbose_name="measured capacity (mAh/g)"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)

    url_name = "chargestate"

    class Meta:
        ordering = ["project", "cell", "cycle_number", "pk"]
        verbose_name = "charge state"

    def __str__(self) -> str:
        return f"{self.cell} {self.state} (cycle {self.cycle_number})"

    def clean(self) -> None:
        self._check_same_project(cell=getattr(self, "cell", None))
        if (
            self.voltage_min_v is not None
            and self.voltage_max_v is not None
            and self.voltage_min_v >= self.voltage_max_v
        ):
            raise ValidationError({"voltage_max_v": "Upper voltage must exceed the lower one."})


class Beamtime(ProjectObject):
    """An allocation at a synchrotron beamline, e.g. Diamond I12, 115 keV."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="beamtimes")
    facility = models.CharField(max_length=100)
    beamline = models.CharField(max_length=50)
    proposal = models.CharField(max_length=50, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    beam_energy_kev = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0)], verbose_name="beam energy (keV)"
    )
    detector = models.CharField(max_length=100, blank=True)
    # Pinhole geometry of the Compton (XCS-I) set-up; with beam_energy_kev as the incident
    # energy, compton jobs on this beamtime's datasets get it as their ``geometry`` option.
    scattering_angle_deg = models.FloatField(
        null=True,
        blank=True,
        verbose_name="scattering angle (deg)",
        help_text="At the detector centre, e.g. 90",
    )
    sample_to_pinhole_mm = models.FloatField(
        null=True, blank=True, verbose_name="sample to pinhole (mm)", help_text="e.g. 160"
    )
    pinhole_to_detector_mm = models.FloatField(
        null=True, blank=True, verbose_name="pinhole to detector (mm)", help_text="e.g. 150"
    )
    pixel_pitch_mm = models.FloatField(
        null=True, blank=True, verbose_name="pixel pitch (mm)", help_text="HEXITEC: 0.25"
    )
    beam_axis = models.CharField(
        max_length=3,
        blank=True,
        choices=[("col", "columns"), ("row", "rows")],
        help_text="Detector axis along which the scattering angle changes",
    )

    url_name = "beamtime"

    class Meta:
        ordering = ["project", "-start_date", "pk"]

    def __str__(self) -> str:
        label = f"{self.facility} {self.beamline}"
        return f"{label} {self.proposal}".strip() if self.proposal else label

    def clean(self) -> None:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValidationError({"end_date": "The beamtime cannot end before it starts."})
        self.check_geometry()

    def check_geometry(self) -> None:
        """The instrument fields are all empty or all given, each possible (engine rules)."""
        given = {f: getattr(self, f) for f in GEOMETRY_FIELDS}
        if all(given[f] in (None, "") for f in GEOMETRY_FIELDS[1:]):
            return  # no Compton geometry: a beam energy alone is fine
        errors = {}
        for name, value in given.items():
            if value in (None, ""):
                errors[name] = (
                    "The Compton geometry needs every instrument field; this one is missing."
                )
        for name in (
            "beam_energy_kev",
            "sample_to_pinhole_mm",
            "pinhole_to_detector_mm",
            "pixel_pitch_mm",
        ):
            value = given[name]
            if value not in (None, "") and not (math.isfinite(value) and value > 0):
                errors[name] = f"Must be a number > 0, got {value:g}."
        angle = given["scattering_angle_deg"]
        if angle is not None and not (math.isfinite(angle) and 0 < angle < 180):
            errors["scattering_angle_deg"] = f"Must be within 0..180 deg, got {angle:g}."
        if given["beam_axis"] not in ("", "col", "row"):
            errors["beam_axis"] = f"Must be 'col' or 'row', got {given['beam_axis']!r}."
        if errors:
            raise ValidationError(errors)

    def instrument_geometry(self) -> dict | None:
        """The engine's geometry mapping, or None when the instrument fields are not all set."""
        values = {f: getattr(self, f) for f in GEOMETRY_FIELDS}
        if any(v in (None, "") for v in values.values()):
            return None
        values["incident_energy_kev"] = values.pop("beam_energy_kev")
        return {k: values[k] for k in sorted(values)}


# Beamtime fields that make the engine's instrument geometry (beam_energy_kev is the incident
# energy); see analysis_engine.compton.geometry.GEOMETRY_KEYS.
GEOMETRY_FIELDS = (
    "beam_energy_kev",
    "scattering_angle_deg",
    "sample_to_pinhole_mm",
    "pinhole_to_detector_mm",
    "pixel_pitch_mm",
    "beam_axis",
)


class DatasetKind(models.TextChoices):
    XCT_PROJECTIONS = "xct_projections", "XCT projections"
    XCT_RECONSTRUCTION = "xct_reconstruction", "XCT reconstruction"
    XCS_EVENTS = "xcs_events", "XCS-I events"
    XCS_FRAMES = "xcs_frames", "XCS-I raw frames"
    XCS_SPECTRA = "xcs_spectra", "XCS-I spectra"
    EIS = "eis", "EIS"
    CYCLING = "cycling", "Cycling"
    IMAGE = "image", "Image"
    OTHER = "other", "Other"


assert tuple(DatasetKind.values) == tuple(DATASET_KINDS), "keep in step with the engine"


class DatasetStatus(models.TextChoices):
    UPLOADING = "uploading", "Uploading"
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


def dataset_upload_to(instance: "Dataset", filename: str) -> str:
    return f"datasets/{instance.project_id}/{PurePosixPath(filename).name}"


class Dataset(ProjectObject):
    """A stored data file and what it describes (cell, charge state, beamtime, depth region)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    kind = models.CharField(max_length=32, choices=DatasetKind.choices, default=DatasetKind.OTHER)
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to=dataset_upload_to, max_length=500, blank=True)
    size = models.BigIntegerField(default=0, help_text="bytes")
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=DatasetStatus.choices, default=DatasetStatus.UPLOADING
    )
    status_message = models.TextField(blank=True)
    cell = models.ForeignKey(
        Cell, null=True, blank=True, on_delete=models.RESTRICT, related_name="datasets"
    )
    charge_state = models.ForeignKey(
        ChargeState, null=True, blank=True, on_delete=models.RESTRICT, related_name="datasets"
    )
    beamtime = models.ForeignKey(
        Beamtime, null=True, blank=True, on_delete=models.RESTRICT, related_name="datasets"
    )
    region = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Depth region number; region 1 is at index 0 of the thickness axis",
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="datasets",
    )

    url_name = "dataset"

    class Meta:
        ordering = ["project", "-created_at", "-pk"]
        indexes = [models.Index(fields=["project", "kind"]), models.Index(fields=["sha256"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # A charge state implies its cell: keep the link explicit so cell filters find it.
        if self.charge_state_id and not self.cell_id:
            self.cell_id = self.charge_state.cell_id
        super().save(*args, **kwargs)

    def clean(self) -> None:
        charge_state = getattr(self, "charge_state", None)
        cell = getattr(self, "cell", None)
        self._check_same_project(
            cell=cell, charge_state=charge_state, beamtime=getattr(self, "beamtime", None)
        )
        if charge_state is not None and cell is not None and charge_state.cell_id != cell.pk:
            raise ValidationError({"charge_state": "This charge state belongs to another cell."})


def calibration_upload_to(instance: "DetectorCalibration", filename: str) -> str:
    return f"calibrations/{instance.project_id}/{instance.name}/{PurePosixPath(filename).name}"


class DetectorCalibration(ProjectObject):
    """Per-pixel HEXITEC calibration arrays of a beamtime (docs/formats.md): gradients
    (keV/ADU), intercepts (keV) and optional thresholds (ADU), 80 x 80 each, stored as
    uploaded (.npy or text). Event jobs on raw ``.bin`` datasets of the beamtime use it."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="detector_calibrations"
    )
    beamtime = models.ForeignKey(
        Beamtime, on_delete=models.CASCADE, related_name="detector_calibrations"
    )
    name = models.CharField(max_length=100)
    gradients = models.FileField(upload_to=calibration_upload_to, max_length=500)
    intercepts = models.FileField(upload_to=calibration_upload_to, max_length=500)
    thresholds = models.FileField(upload_to=calibration_upload_to, max_length=500, blank=True)
    bad_pixels = models.PositiveIntegerField(default=0, help_text="pixels with non-finite maps")

    class Meta:
        ordering = ["beamtime", "name"]
        constraints = [
            models.UniqueConstraint(fields=["beamtime", "name"], name="unique_calibration_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.beamtime})"

    def get_absolute_url(self) -> str:
        return self.beamtime.get_absolute_url()

    def engine_paths(self) -> dict[str, str]:
        """``run_events`` options naming the stored arrays."""
        paths = {
            "gradients_path": store.local_path(self.gradients),
            "intercepts_path": store.local_path(self.intercepts),
        }
        if self.thresholds:
            paths["thresholds_path"] = store.local_path(self.thresholds)
        return paths


class ComptonCalibration(ProjectObject):
    """``S = A + B (1 - x)`` of a beamtime and detector, fitted by a ``compton_calibrate``
    job from spectra of reference standards of known 1 - x (same S definition as the maps).
    Compton jobs on the beamtime's datasets use the latest one instead of the paper's line."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="compton_calibrations"
    )
    beamtime = models.ForeignKey(
        Beamtime, on_delete=models.CASCADE, related_name="compton_calibrations"
    )
    detector = models.CharField(max_length=100, blank=True)
    intercept = models.FloatField(help_text="A: S at 1 - x = 0")
    slope = models.FloatField(help_text="B: dS / d(1 - x)")
    intercept_sigma = models.FloatField(default=0.0)
    slope_sigma = models.FloatField(default=0.0)
    covariance_ab = models.FloatField(default=0.0)
    standards = models.JSONField(
        default=list, blank=True, help_text="Measured S, its sigma and the known 1 - x, each"
    )
    result = models.ForeignKey(
        "jobs.Result", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["beamtime", "-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"S = ({self.intercept:.4f} +- {self.intercept_sigma:.4f}) + "
            f"({self.slope:.4f} +- {self.slope_sigma:.4f}) (1 - x), "
            f"cov(A, B) = {self.covariance_ab:.2g}, {len(self.standards)} standards"
            f"{' (' + self.detector + ')' if self.detector else ''}"
        )

    def get_absolute_url(self) -> str:
        """The result page of the fit (its points and settings), else the beamtime's."""
        if self.result_id is not None:
            return self.result.get_absolute_url()
        return self.beamtime.get_absolute_url()

    @classmethod
    def latest_for(cls, beamtime) -> "ComptonCalibration | None":
        """The newest calibration of the beamtime for its detector (with a stored file)."""
        return (
            cls.objects.filter(beamtime=beamtime, detector=beamtime.detector, result__isnull=False)
            .order_by("-created_at", "-id")
            .first()
        )
