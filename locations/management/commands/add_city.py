"""manage.py add_city SLUG --name ... --lat ... --lng ... --radius-km ..."""

import math

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from locations import services
from locations.models import City


class Command(BaseCommand):
    help = ("Add a city (a circle: centre and radius) or update the one with this slug, and create its "
            "partitions (the city's LIST partition, a DEFAULT day partition and the days around today).")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="Short unique name, e.g. san-francisco.")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'San Francisco'.")
        parser.add_argument("--lat", type=float, required=True, help="Latitude of the centre, degrees.")
        parser.add_argument("--lng", type=float, required=True, help="Longitude of the centre, degrees.")
        parser.add_argument("--radius-km", type=float, required=True, help="Radius of the city, km (0 to 500).")
        parser.add_argument("--inactive", action="store_true", help="Create it inactive (gets no pings).")
        parser.add_argument("--dry-run", action="store_true", help="Validate, say what would happen; change nothing.")

    def handle(self, *args, slug, name, lat, lng, radius_km, inactive, dry_run, **options):
        check_arguments(slug=slug, name=name, lat=lat, lng=lng, radius_km=radius_km)
        city = City.objects.filter(slug=slug).first() or City(slug=slug)
        verb = "update" if city.pk else "create"
        city.name, city.lat, city.lng, city.radius_km, city.active = name, lat, lng, radius_km, not inactive
        try:
            city.full_clean(validate_unique=city.pk is None)
        except ValidationError as exc:
            # What check_arguments cannot know (a model rule added later): the field and Django's words.
            raise CommandError("; ".join(
                f"{'city' if k == '__all__' else k}: {' '.join(v)}" for k, v in exc.message_dict.items()
            )) from None
        if dry_run:
            self.stdout.write(f"Would {verb} city {slug} ({name}) at {lat}, {lng}, radius {radius_km} km.")
            return
        city = services.save_city(city)
        self.stdout.write(self.style.SUCCESS(
            f"{verb.capitalize()}d city {city.slug} (id {city.id}); partition locations_ping_city{city.id} ready."))


def check_arguments(*, slug: str, name: str, lat: float, lng: float, radius_km: float) -> None:
    """Every argument in plain words: which one is wrong and what it may be."""
    try:
        validate_slug(slug)
    except ValidationError:
        raise CommandError("The slug must be letters, digits, hyphens or underscores, e.g. san-francisco "
                           f"(got {slug!r}).") from None
    if len(slug) > 50:
        raise CommandError(f"The slug must be at most 50 characters (got {len(slug)}).")
    if not name.strip() or len(name) > 100:
        raise CommandError("--name must be 1 to 100 characters, e.g. 'San Francisco'.")
    for option, value, low, high in (("--lat", lat, -90, 90), ("--lng", lng, -180, 180)):
        if not (math.isfinite(value) and low <= value <= high):
            raise CommandError(f"{option} must be between {low} and {high} degrees (got {value:g}).")
    if not (math.isfinite(radius_km) and 0 < radius_km <= 500):
        raise CommandError(f"--radius-km must be more than 0 and at most 500 km (got {radius_km:g}).")
