"""Create the demo staff account of ``make run`` (development only) and print its password.

The password is random, printed when the account is made (``--reset-password`` prints a new
one) and kept in ``.data/demo_logins.json`` (core/demo_logins.py) so that every ``make run``
prints it again; outside the development settings (``DEMO_STAFF_ENABLED``) the command refuses.
"""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from core import demo_logins


class Command(BaseCommand):
    help = "Development only: create a demo staff (superuser) account if none exists yet, with a random password."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would be done")
        parser.add_argument("--reset-password", action="store_true",
                            help="give an existing demo account a new random password and print it")

    def handle(self, *args, dry_run=False, reset_password=False, **options):
        if not settings.DEMO_STAFF_ENABLED:
            raise CommandError("ensure_demo_staff runs only with the development settings (DEMO_STAFF_ENABLED); "
                               "make staff accounts elsewhere with `manage.py createsuperuser`.")
        phone = demo_logins.staff_phone()
        existing = User.objects.filter(phone=phone).first()
        if existing is not None and not reset_password:
            self.stdout.write(f"Demo staff account exists: phone {phone} (`make run` prints its login when ready; "
                              "--reset-password prints a new password).")
            return
        if dry_run:
            self.stdout.write(f"Would {'reset the password of' if existing else 'create'} demo staff account {phone}.")
            return
        password = secrets.token_urlsafe(12)
        if existing is not None:
            existing.set_password(password)
            existing.save(update_fields=["password"])
            user, what = existing, "New password for the demo staff account"
        else:
            user = User.objects.create_superuser(phone, password, display_name="Demo staff", is_verified=True)
            what = "Created demo staff account"
        # Kept under .data/ (mode 600) so that every `make run` prints it again (development only).
        demo_logins.remember("staff", user, password)
        self.stdout.write(self.style.SUCCESS(f"{what}: phone {phone}  password {password}  (log in at /admin/)"))
