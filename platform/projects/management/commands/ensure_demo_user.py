"""Create (or reset) the demo login and give it a demo project. Idempotent."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from projects.models import Membership, Project, Role
from projects.services import create_project

DEMO_PROJECT = "Demo: DIT vs slurry-cast NMC811 (Huang et al. 2022)"


class Command(BaseCommand):
    help = "Create the demo login (default demo / correli-demo) with an owned demo project."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="correli-demo")

    def handle(self, *args, username, password, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.is_active = True
        user.save()
        project = Project.objects.filter(name=DEMO_PROJECT).first()
        if project is None:
            project = create_project(
                user=user,
                name=DEMO_PROJECT,
                description=(
                    "Correlative Compton scattering imaging (HEXITEC, 115 keV, 90 deg) and "
                    "X-ray CT of directional-ice-templated and slurry-cast NMC811 cathodes."
                ),
            )
        else:
            Membership.objects.get_or_create(
                project=project, user=user, defaults={"role": Role.OWNER}
            )
        verb = "created" if created else "reset"
        self.stdout.write(f"Demo login {verb}: {username} / {password} (project #{project.pk})")
