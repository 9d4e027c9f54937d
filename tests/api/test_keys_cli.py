"""`bureau keys rotate` and `bureau keys prune` on an SQLite file, through the command line."""

import base64
import json
from pathlib import Path

import httpx

from app import create_app
from models.db import connect
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.test_sqlite_smoke import bureau


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def viewer_status(tmp_path: Path, token: str) -> int:
    """What a freshly started server (its own key cache) answers to the token."""
    database = connect(f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}")
    try:
        app = create_app(runtime=Runtime.create(database, Settings()))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bureau.test") as http:
            response = await http.post("/graphql", json={"query": "{ viewer { clientId } }"},
                                       headers={"Authorization": f"Bearer {token}"})
        return response.status_code
    finally:
        await database.dispose()


async def test_rotation_keeps_old_tokens_valid_and_prune_drops_them(tmp_path: Path) -> None:
    bureau(tmp_path, "migrate")
    client = json.loads(bureau(tmp_path, "clients", "create", "--name", "cli", "--scopes", "firms:read"))
    old = bureau(tmp_path, "tokens", "issue", "--client-id", client["client_id"], "--scopes", "firms:read")

    rotated = json.loads(bureau(tmp_path, "keys", "rotate"))
    new_kid = rotated["activeKid"]
    assert new_kid != kid_of(old)
    assert {k["kid"]: k["retiredAt"] is None for k in rotated["keys"]} == {kid_of(old): False, new_kid: True}

    new = bureau(tmp_path, "tokens", "issue", "--client-id", client["client_id"], "--scopes", "firms:read")
    assert kid_of(new) == new_kid
    assert await viewer_status(tmp_path, old) == 200
    assert await viewer_status(tmp_path, new) == 200

    kept = json.loads(bureau(tmp_path, "keys", "prune", "--older-than", "3600"))
    assert kept["removed"] == 0 and len(kept["keys"]) == 2
    pruned = json.loads(bureau(tmp_path, "keys", "prune", "--older-than", "0"))
    assert pruned["removed"] == 1 and [k["kid"] for k in pruned["keys"]] == [new_kid]
    assert await viewer_status(tmp_path, old) == 401
    assert await viewer_status(tmp_path, new) == 200
