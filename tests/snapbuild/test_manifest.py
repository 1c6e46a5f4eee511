"""SnapshotManifest: the contract fields, canonical JSON, and clean errors on bad input."""

from __future__ import annotations

import json

import pytest

from snapbuild import SnapshotManifest
from snapbuild.errors import VerifyError
from snapbuild.manifest import file_digests, snapshot_id_for


def full_manifest() -> SnapshotManifest:
    return SnapshotManifest(
        snapshot_id="snap-0123456789abcdef",
        generated_at="2026-04-19T08:00:00Z",
        schema_version=1,
        playlist_count=12,
        track_count=34,
        file_count=56,
        cover_count=7,
        db_sha256="ab" * 32,
        content_digest="0123456789abcdef" * 4,
        table_counts={"catalog_tracks": 34, "catalog_playlists": 12},
        sqlite_version="3.40.1",
        repairs={"playlist_tracks_missing_song": 2},
    )


def test_round_trip_manifest_dict() -> None:
    """A manifest with only the contract fields survives a dict round trip."""
    manifest = SnapshotManifest(
        snapshot_id="snap-001",
        generated_at="2026-04-19T08:00:00Z",
        schema_version=1,
        playlist_count=12,
        track_count=34,
        file_count=56,
        cover_count=7,
    )
    payload = manifest.to_dict()
    restored = SnapshotManifest.from_dict(payload)
    assert restored.snapshot_id == "snap-001"
    assert restored.track_count == 34
    assert restored == manifest


def test_full_round_trip_through_json() -> None:
    manifest = full_manifest()
    assert SnapshotManifest.from_json(manifest.to_json()) == manifest
    assert SnapshotManifest.from_dict(manifest.to_dict()) == manifest


def test_to_json_is_canonical() -> None:
    text = full_manifest().to_json()
    assert text.endswith("}\n")
    payload = json.loads(text)
    assert list(payload) == sorted(payload)
    # Key order of the dicts given does not matter: same content, same bytes.
    shuffled = SnapshotManifest.from_dict({**payload, "table_counts": dict(reversed(payload["table_counts"].items()))})
    assert shuffled.to_json() == text


def test_to_json_keeps_utf8_unescaped() -> None:
    manifest = SnapshotManifest("snap-1", "2026-04-19T08:00:00Z", 1, 0, 0, 0, 0, repairs={"海屿你": 1})
    assert "海屿你" in manifest.to_json()


def test_from_dict_tolerates_unknown_keys() -> None:
    payload = {**full_manifest().to_dict(), "added_by_a_later_version": {"x": 1}}
    assert SnapshotManifest.from_dict(payload) == full_manifest()


def test_the_manifest_is_frozen() -> None:
    with pytest.raises(AttributeError):
        full_manifest().track_count = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"snapshot_id": None}, "missing field 'snapshot_id'"),
        ({"track_count": "34"}, "'track_count' must be an integer"),
        ({"track_count": True}, "'track_count' must be an integer"),
        ({"generated_at": 5}, "'generated_at' must be a str"),
        ({"table_counts": {"catalog_tracks": "many"}}, "'table_counts' must map names to integers"),
        ({"repairs": [1, 2]}, "'repairs' must map names to integers"),
        ({"db_sha256": 12}, "'db_sha256' must be a string"),
    ],
)
def test_from_dict_rejects_malformed_payloads(change: dict, reason: str) -> None:
    payload = full_manifest().to_dict()
    for key, value in change.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    with pytest.raises(VerifyError, match=reason):
        SnapshotManifest.from_dict(payload)


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '"a string"', "{"])
def test_from_json_rejects_non_manifests(text: str) -> None:
    with pytest.raises(VerifyError):
        SnapshotManifest.from_json(text)


def test_snapshot_id_is_snap_plus_16_hex_digits() -> None:
    assert snapshot_id_for("0123456789abcdef" * 4) == "snap-0123456789abcdef"


def test_content_digest_ignores_only_the_writer_version_field(tmp_path) -> None:
    data = bytearray(range(256)) * 20
    first = tmp_path / "a.db"
    first.write_bytes(bytes(data))
    data[97] ^= 0xFF  # inside offsets 96..99: SQLITE_VERSION_NUMBER of the last writer
    second = tmp_path / "b.db"
    second.write_bytes(bytes(data))
    data[200] ^= 0xFF  # anywhere else: content
    third = tmp_path / "c.db"
    third.write_bytes(bytes(data))
    (sha_a, digest_a), (sha_b, digest_b), (sha_c, digest_c) = map(file_digests, (first, second, third))
    assert sha_a != sha_b and digest_a == digest_b
    assert digest_c != digest_b
