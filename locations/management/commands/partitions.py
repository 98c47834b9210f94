"""manage.py partitions: the pings table's partitions with their row counts and sizes."""

from django.core.management.base import BaseCommand

from locations import partitions


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class Command(BaseCommand):
    help = ("List every partition of locations_ping (city LIST partitions and their day partitions) "
            "with bounds, rows (exact below 64 MB, else the planner's estimate) and total size.")

    def add_arguments(self, parser):
        parser.add_argument("--leaves", action="store_true", help="Only leaf (day/default) partitions.")

    def handle(self, *args, leaves, **options):
        report = partitions.partition_report()
        total_rows = total_bytes = 0
        self.stdout.write(f"{'partition':<42} {'rows':>12} {'size':>10}  bounds")
        for info in report:
            if leaves and not info.is_leaf:
                continue
            indent = "  " * (info.level - 1)
            rows = f"{info.rows:,}" if info.is_leaf else ""
            size = _size(info.total_bytes) if info.is_leaf else ""
            self.stdout.write(f"{indent + info.name:<42} {rows:>12} {size:>10}  {info.bounds}")
            total_rows += info.rows
            total_bytes += info.total_bytes
        self.stdout.write(f"{len(report)} partitions, {total_rows:,} rows, {_size(total_bytes)}")
