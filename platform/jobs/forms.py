import json

from django import forms

from . import engine_registry as registry


class JSONParametersField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"})

    def to_python(self, value):
        value = (value or "").strip()
        if not value:
            return {}
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"bin_width_kev": 0.25}.')
        return data


class RunJobForm(forms.Form):
    kind = forms.ChoiceField(label="Analysis")
    parameters = JSONParametersField(
        required=False,
        help_text="Engine options as JSON; leave empty for the defaults listed beside.",
    )
    force = forms.BooleanField(required=False, label="Run again even if this exact job exists")

    def __init__(self, *args, data_kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kinds = [
            k
            for k in registry.submittable_kinds()
            if k["available"] and len(k["inputs"]) == 1 and data_kind in k["inputs"][0]["accepts"]
        ]
        self.fields["kind"].choices = [(k["kind"], k["label"]) for k in self.kinds]


class RunPipelineForm(forms.Form):
    parameters = JSONParametersField(
        required=False,
        help_text='Per-stage options, e.g. {"events": {"bin_width_kev": 0.25}, '
        '"tortuosity": {"axis": 0}}.',
    )
    force = forms.BooleanField(required=False, label="Run again even if this exact pipeline exists")


class CommentForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=5000, label="Comment"
    )
