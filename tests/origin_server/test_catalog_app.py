"""The app with a catalog: a valid token for a file the snapshot in force does not list answers 410 gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import falcon.testing
import pytest
import requests

from origin_server.app import create_app
from origin_server.catalog import Catalog
from origin_server.config import OriginConfig
from origin_server.keys import KeyRing

from .catalog_support import NAS, Published, publish_sample
from .conftest import NOW, SECRET, STREAM, Running, open_fds, token_for


@pytest.fixture
def published(tmp_path: Path) -> Published:
    return publish_sample(tmp_path / "pub")


def catalog_config(published: Published, *, catalog: bool = True, **overrides: object) -> OriginConfig:
    """The test key and fixed clock, the sample's media as root ``nas-main``, and its catalog."""
    options: dict[str, object] = {
        "roots": {NAS: published.media},
        "keys": KeyRing.single(SECRET),
        "clock": lambda: NOW,
        "catalog": Catalog(published.directory, [NAS]) if catalog else None,
    }
    options.update(overrides)
    return OriginConfig(**options)  # type: ignore[arg-type]


def media_bytes(published: Published, locator: str) -> bytes:
    return published.media.joinpath(*locator.split("/")).read_bytes()


def assert_gone(result: falcon.testing.Result, *, body: bool = True) -> None:
    assert result.status_code == 410
    assert result.json == ({"error": "gone"} if body else None)
    assert result.headers["Cache-Control"] == "no-store"
    for name in ("ETag", "Content-Range", "Content-Disposition", "Last-Modified", "X-Accel-Redirect"):
        assert name not in result.headers


def test_listed_files_are_served_and_unlisted_files_on_disk_are_gone(published: Published) -> None:
    listed = published.listed()
    gone = listed[0]
    published.set_status(gone, "inactive")
    published.export()
    assert published.media.joinpath(*gone.split("/")).is_file()  # still on disk
    client = falcon.testing.TestClient(create_app(catalog_config(published)))
    served = client.simulate_get(STREAM + token_for(listed[1], backend=NAS))
    assert served.status_code == 200 and served.content == media_bytes(published, listed[1])
    ranged = client.simulate_get(STREAM + token_for(listed[1], backend=NAS), headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.content == media_bytes(published, listed[1])[:10]
    before = open_fds()
    assert_gone(client.simulate_get(STREAM + token_for(gone, backend=NAS)))
    assert_gone(client.simulate_head(STREAM + token_for(gone, backend=NAS)), body=False)
    # Revalidation and ranges of a gone file are gone too.
    assert_gone(client.simulate_get(STREAM + token_for(gone, backend=NAS), headers={"If-None-Match": "*"}))
    assert_gone(client.simulate_get(STREAM + token_for(gone, backend=NAS), headers={"Range": "bytes=0-1"}))
    assert open_fds() == before


def test_the_token_is_checked_first_and_unknown_roots_stay_404(published: Published) -> None:
    gone = published.listed()[0]
    published.set_status(gone, "inactive")
    published.export()
    client = falcon.testing.TestClient(create_app(catalog_config(published)))
    expired = client.simulate_get(STREAM + token_for(gone, backend=NAS, expires_at=NOW - 3600))
    assert (expired.status_code, expired.json) == (403, {"error": "token_expired"})
    forged = token_for(gone, backend=NAS)[:-2] + "AA"
    assert client.simulate_get(STREAM + forged).json == {"error": "invalid_token"}
    # No root of that name (or none at all): the same 404 as without a catalog.
    assert client.simulate_get(STREAM + token_for(gone, backend="main-s3")).json == {"error": "not_found"}
    assert client.simulate_get(STREAM + token_for(gone)).json == {"error": "not_found"}


def test_a_listed_file_missing_on_disk_is_404(published: Published) -> None:
    listed = published.listed()[0]
    published.media.joinpath(*listed.split("/")).unlink()
    client = falcon.testing.TestClient(create_app(catalog_config(published)))
    assert client.simulate_get(STREAM + token_for(listed, backend=NAS)).json == {"error": "not_found"}


def test_an_unlisted_file_is_gone_before_the_disk_is_looked_at(published: Published) -> None:
    gone = published.listed()[0]
    published.set_status(gone, "inactive")
    published.export()
    published.media.joinpath(*gone.split("/")).unlink()  # not on disk either: still gone, not 404
    client = falcon.testing.TestClient(create_app(catalog_config(published)))
    assert_gone(client.simulate_get(STREAM + token_for(gone, backend=NAS)))
    assert_gone(client.simulate_get(STREAM + token_for("never/listed.flac", backend=NAS)))


def test_a_file_the_catalog_never_listed_is_gone(published: Published) -> None:
    """A file put into the media root by hand is not in the catalog: a valid token for it is not enough."""
    (published.media / "stray.flac").write_bytes(b"not in the catalog")
    client = falcon.testing.TestClient(create_app(catalog_config(published)))
    assert_gone(client.simulate_get(STREAM + token_for("stray.flac", backend=NAS)))
    without = falcon.testing.TestClient(create_app(catalog_config(published, catalog=False)))
    assert without.simulate_get(STREAM + token_for("stray.flac", backend=NAS)).status_code == 200


def test_offload_answers_gone_before_any_redirect(published: Published) -> None:
    gone = published.listed()[0]
    published.set_status(gone, "inactive")
    published.export()
    client = falcon.testing.TestClient(create_app(catalog_config(published, offload="nginx")))
    assert_gone(client.simulate_get(STREAM + token_for(gone, backend=NAS)))
    kept = client.simulate_get(STREAM + token_for(published.listed()[0], backend=NAS))
    assert kept.status_code == 200 and "X-Accel-Redirect" in kept.headers


def test_healthz_names_the_snapshot_in_force_only_with_details(published: Published) -> None:
    client = falcon.testing.TestClient(create_app(catalog_config(published, health_details=True)))
    health = client.simulate_get("/healthz").json
    assert health["status"] == "ok" and health["catalog"] == published.manifest()["snapshot_id"]
    plain = falcon.testing.TestClient(create_app(catalog_config(published))).simulate_get("/healthz").json
    assert plain == {"status": "ok"}


def test_a_real_server_follows_the_catalog(published: Published, serve_app: Callable[..., Running]) -> None:
    """Over HTTP on a real waitress server: served, then gone once a new snapshot is in force."""
    listed = published.listed()
    config = catalog_config(published)
    server = serve_app(create_app(config))
    url = server.url + STREAM + token_for(listed[0], backend=NAS)
    assert requests.get(url, timeout=10).content == media_bytes(published, listed[0])
    published.set_status(listed[0], "inactive")
    published.export()
    assert config.catalog is not None and config.catalog.refresh() is True
    answer = requests.get(url, timeout=10)
    assert (answer.status_code, answer.json()) == (410, {"error": "gone"})
    assert requests.get(server.url + STREAM + token_for(listed[1], backend=NAS), timeout=10).status_code == 200
