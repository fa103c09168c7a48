from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("live", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="livechunk",
            name="offset",
            field=models.BigIntegerField(default=0),
        ),
    ]
