from django import template
from django.template.defaultfilters import filesizeformat

register = template.Library()


@register.simple_tag
def field_value(obj, name: str):
    """A field's value for display: choice labels, human file sizes, dashes for blanks."""
    display = getattr(obj, f"get_{name}_display", None)
    value = display() if callable(display) else getattr(obj, name, None)
    if name == "size" and isinstance(value, int):
        return filesizeformat(value)
    if value is None or value == "":
        return "—"
    return value
