"""An attacker of the crossings feature, through the public HTTP API only.

It owns accounts (tokens), posts pings wherever and whenever the API accepts, and reads which
of its accounts "crossed" the victim.  The detector is the server's background job: the
attacker cannot run it, only wait for it; the tests run it where the beat task would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.utils import timezone

from accounts import services as account_services
from core.geo import M_PER_DEG, distance_m
from crossings.detection.run import run_detection
from crossings.selectors import detector_lag_seconds
from tests.factories import make_user
from tests.waiting import wait_until


@dataclass
class Attacker:
    base_url: str
    request_count: int = 0
    accounts: int = 0
    session: requests.Session = field(default_factory=requests.Session)

    def account(self, *, verified: bool) -> dict:
        """A throw-away account (a verified one costs the attacker a SIM) and its token."""
        user = make_user(is_verified=verified)
        _session, access, _refresh = account_services.open_session(user, user_agent="attacker")
        self.accounts += 1
        return {"id": str(user.pk), "auth": {"Authorization": f"Bearer {access}"}}

    def ping(self, account: dict, pings: list[tuple[float, float, datetime]]) -> requests.Response:
        body = {"pings": [{"lat": lat, "lng": lng, "recorded_at": at.isoformat()} for lat, lng, at in pings]}
        self.request_count += 1
        return self.session.post(f"{self.base_url}/api/v1/locations/", json=body, headers=account["auth"],
                                 timeout=60)

    def crossed(self, account: dict) -> set[str]:
        """The ids of the people this account crossed, as the API shows them (every page)."""
        ids: set[str] = set()
        url: str | None = f"{self.base_url}/api/v1/crossings/?page_size=100"
        while url:
            self.request_count += 1
            response = self.session.get(url, headers=account["auth"], timeout=60)
            response.raise_for_status()
            body = response.json()
            ids |= {item["user"]["id"] for item in body["results"]}
            url = body["next"]
        return ids


def offset(point: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    lat = point[0] + north_m / M_PER_DEG
    return lat, point[1] + east_m / (M_PER_DEG * math.cos(math.radians(point[0])))


def detect_all(deadline_s: float = 120.0) -> None:
    """What the attacker waits for: the detector's runs until every ping sent so far is
    processed (a run leaves pings of transactions still open to the next one)."""
    def caught_up() -> bool:
        run_detection()
        return detector_lag_seconds() == 0

    wait_until(caught_up, deadline_s, "the detector to catch up")


@dataclass
class Bisection:
    """The edge-bisection attack: in each of ``directions`` directions, binary search for the
    distance from a guess where probes stop crossing the victim; the victim is estimated at the
    centre of the edge points found."""

    attacker: Attacker
    victim_id: str
    guess: tuple[float, float]
    directions: int = 8
    rounds: int = 8
    far_m: float = 1200.0

    def run(self, at: datetime) -> tuple[float, float]:
        bounds = [[0.0, self.far_m] for _ in range(self.directions)]
        for _ in range(self.rounds):
            probes = []
            for k, (inside, outside) in enumerate(bounds):
                angle = 2 * math.pi * k / self.directions
                middle = (inside + outside) / 2
                account = self.attacker.account(verified=True)
                point = offset(self.guess, middle * math.cos(angle), middle * math.sin(angle))
                response = self.attacker.ping(account, [(*point, at)])
                assert response.status_code == 201, response.text
                probes.append((k, middle, account))
            detect_all()
            for k, middle, account in probes:
                if self.victim_id in self.attacker.crossed(account):
                    bounds[k][0] = middle
                else:
                    bounds[k][1] = middle
        edges = []
        for k, (inside, outside) in enumerate(bounds):
            angle = 2 * math.pi * k / self.directions
            d = (inside + outside) / 2
            edges.append(offset(self.guess, d * math.cos(angle), d * math.sin(angle)))
        return (sum(p[0] for p in edges) / len(edges), sum(p[1] for p in edges) / len(edges))


def error_m(estimate: tuple[float, float], truth: tuple[float, float]) -> float:
    return distance_m(estimate[0], estimate[1], truth[0], truth[1])


def now() -> datetime:
    return timezone.now()


def minutes_ago(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)
