"""The demo logins of ``make run`` (development data only), printed every run once it is ready.

``ensure_demo_staff`` and ``seed_demo`` remember the staff account's random password and a demo
user in ``.data/demo_logins.json`` (mode 600); ``manage.py serve`` prints them while the stored
password hash still matches the account's (a changed password is never printed).  Tests write
nowhere unless they set ``DEMO_LOGINS_FILE``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

DEMO_STAFF_PHONE = "+14155550100"


def staff_phone() -> str:
    return os.environ.get("DEMO_STAFF_PHONE", DEMO_STAFF_PHONE)


def logins_path() -> Path | None:
    explicit = getattr(settings, "DEMO_LOGINS_FILE", None)
    if explicit:
        return Path(explicit)
    if settings.TESTING or not getattr(settings, "DEMO_STAFF_ENABLED", False):
        return None
    return Path(settings.DATA_DIR) / "demo_logins.json"


def _read() -> dict:
    path = logins_path()
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(kind: str, user, password: str) -> None:
    """Keep ``kind``'s (``staff`` or ``user``) phone and password, with the hash they match."""
    path = logins_path()
    if path is None:
        return
    logins = _read()
    logins[kind] = {"phone": user.phone, "password": password, "hash": user.password}
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(logins, fh)


def login_lines(base_url: str) -> list[str]:
    """One line per demo login that still works; a hint when the staff password is unknown."""
    users = get_user_model().objects
    logins = _read()
    lines = []
    staff = users.filter(phone=staff_phone(), is_staff=True, is_active=True).first()
    known = logins.get("staff") or {}
    if staff is not None:
        if known.get("phone") == staff.phone and known.get("hash") == staff.password:
            lines.append(f"  staff      phone {staff.phone}  password {known['password']}  -> {base_url}/admin/")
        else:
            lines.append(f"  staff      phone {staff.phone}  (password not kept here: "
                         "`manage.py ensure_demo_staff --reset-password` prints a new one)")
    known = logins.get("user") or {}
    user = users.filter(phone=known.get("phone") or "", is_active=True).first()
    if user is not None and known.get("hash") == user.password:
        lines.append(f"  demo user  phone {user.phone}  password {known['password']}  "
                     f"-> POST {base_url}/api/v1/auth/login/")
    return lines
