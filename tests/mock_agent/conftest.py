"""One ``relaygate serve`` on the built-in mock for the client libraries' tests, and the models they share."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import pytest
from pydantic import BaseModel, Field

from tests.servers import relaygate_serve

CONFIG = """\
providers:
  mock: {kind: mock}
database: null
"""
MODEL = "mock/echo"
KEY = "unused"  # no project is configured: the gateway takes any key


@pytest.fixture(scope="package")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("mock-agent")
    (directory / "relaygate.yaml").write_text(CONFIG)
    with relaygate_serve(["--config", str(directory / "relaygate.yaml")], cwd=directory) as url:
        yield url


class Units(StrEnum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Stop(BaseModel):
    name: str
    nights: int = Field(ge=1)


class Trip(BaseModel):
    """Nested models ($defs and $ref), an enum, a bounded integer, a list and an optional field."""

    city: str
    days: int = Field(ge=1, le=14)
    units: Units
    stops: list[Stop]
    note: str | None


TRIP_PROMPT = "Plan 3 days in Lisbon, in fahrenheit."


def check_trip(trip: Trip) -> None:
    assert trip.city == "Lisbon" and trip.days == 3 and trip.units is Units.fahrenheit
    assert len(trip.stops) >= 1 and all(stop.nights >= 1 for stop in trip.stops)


class WeatherReport(BaseModel):
    city: str
    summary: str


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"
