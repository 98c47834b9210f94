"""Create the demo staff account on first run and print its credentials."""

import os

from django.core.management.base import BaseCommand

from accounts.models import User

DEMO_PHONE = "+14155550100"


class Command(BaseCommand):
    help = "Create a demo staff (superuser) account if none exists yet, and print its credentials."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would be done")

    def handle(self, *args, dry_run=False, **options):
        phone = os.environ.get("DEMO_STAFF_PHONE", DEMO_PHONE)
        password = os.environ.get("DEMO_STAFF_PASSWORD", "crossings-demo")
        if User.objects.filter(phone=phone).exists():
            self.stdout.write(f"Demo staff account exists: phone {phone} (password as set on first run).")
            return
        if dry_run:
            self.stdout.write(f"Would create demo staff account {phone}.")
            return
        User.objects.create_superuser(phone, password, display_name="Demo staff", is_verified=True)
        self.stdout.write(self.style.SUCCESS(
            f"Created demo staff account: phone {phone}  password {password}  (log in at /admin/)"
        ))
