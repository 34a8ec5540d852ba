"""The dashboard's HTTP surface: the admin key, bad input, the bundled Plotly.js."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from turnout.gateway.governance import Database

from .dashboard_app import ADMIN, dashboard_app

AUTH = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield database
    database.close()


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    app = dashboard_app(db, simulated=True)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def test_the_page_loads_without_the_key_and_carries_no_data(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "dashboard/plotly.min.js?v=" in page.text and "{{" not in page.text
    assert 'id="login"' in page.text and "sessionStorage" in page.text
    assert "cdn" not in page.text.lower()  # nothing is fetched from outside


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization: Bearer"),
        ({"authorization": "Bearer wrong"}, "invalid admin key"),
        ({"authorization": f"Basic {ADMIN}"}, "Authorization: Bearer"),
    ],
)
def test_the_data_needs_the_admin_key(
    client: TestClient, headers: dict[str, str], message: str
) -> None:
    response = client.get("/dashboard/data", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert message in error["message"] and error["code"] == "invalid_api_key"


def test_without_an_admin_key_configured_the_data_is_off(db: Database) -> None:
    with TestClient(dashboard_app(db, admin_key=None), raise_server_exceptions=False) as http:
        response = http.get("/dashboard/data", headers=AUTH)
    assert response.status_code == 403
    assert "governance.admin_key" in response.json()["error"]["message"]


def test_the_data_with_the_key(client: TestClient) -> None:
    response = client.get("/dashboard/data?days=7", headers=AUTH)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["simulated"] is True
    assert len(data["days"]) == 7
    assert data["freshness"] == {"collections": [], "error": None}


@pytest.mark.parametrize("days", ["abc", "0", "1000", "1.5"])
def test_a_bad_window_is_a_clear_400(client: TestClient, days: str) -> None:
    response = client.get(f"/dashboard/data?days={days}", headers=AUTH)
    assert response.status_code == 400
    assert "days" in response.json()["error"]["message"]


def test_a_broken_ledger_is_a_503_not_a_crash(db: Database, client: TestClient) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE requests"))
    response = client.get("/dashboard/data", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ledger_unavailable"
    assert client.get("/dashboard").status_code == 200


def test_plotly_is_served_from_the_package_with_long_caching(client: TestClient) -> None:
    from importlib.util import find_spec

    spec = find_spec("plotly")
    assert spec is not None and spec.submodule_search_locations
    folder = Path(spec.submodule_search_locations[0])
    shipped = (folder / "package_data" / "plotly.min.js").read_bytes()
    plain = client.get("/dashboard/plotly.min.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.content == shipped
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "max-age=31536000" in plain.headers["cache-control"]
    packed = client.get("/dashboard/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == shipped  # decoded by the client
    assert int(packed.headers["content-length"]) < len(shipped) / 2  # what went on the wire
