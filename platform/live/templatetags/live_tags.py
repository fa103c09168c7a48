"""Links to live acquisitions from other pages (the dataset page of a live acquisition's spectra)."""

from django import template

from live.models import LiveAcquisition

register = template.Library()


@register.simple_tag
def live_acquisition_of(dataset):
    """The live acquisition whose final spectra are ``dataset`` (same project), or None.

    The page showing ``dataset`` has already checked that the user may see its project.
    """
    return (
        LiveAcquisition.objects.filter(spectra=dataset, project_id=dataset.project_id)
        .only("pk", "name")
        .first()
    )
