"""The floor: one hand-written SQL statement per workload that builds bureau's answer as JSON,
served by asyncpg behind the same uvicorn. No authentication, no GraphQL: what is left is the
cost of the data itself, which no GraphQL server can go below. The ceiling (`bench.floor:ceiling`)
answers the same from memory after the first time: what uvicorn itself serves.

    DATABASE_URL=postgresql://postgres@127.0.0.1/bureau_bench .venv/bin/uvicorn bench.floor:app --port 8200
"""

import json
import os
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from models import ids

# A global ID as models/ids.py makes it: URL-safe base64 of "Type:pk" without padding.
GID = "rtrim(translate(encode(convert_to({type} || ':' || {pk}, 'UTF8'), 'base64'), '+/', '-_'), '=')"


def gid(type_name: str, pk: str) -> str:
    return GID.format(type=f"'{type_name}'", pk=pk)


# R13/R52 as licensing/usage.py counts them: NAMED seats are distinct users with a membership
# that holds a seat in the agreement's companies; CONCURRENT ones are live sessions.
IN_USE = """CASE p.license_type
  WHEN 'NAMED' THEN (SELECT count(DISTINCT m.user_id) FROM memberships m JOIN companies c ON c.id = m.company_id
                     WHERE c.agreement_id = s.agreement_id AND m.license_type = 'NAMED'
                       AND m.status <> 'DEACTIVATED' AND (m.access_ends_at IS NULL OR m.access_ends_at > now())
                       AND (m.status = 'ACTIVE' OR m.invitation_expires_at IS NULL OR m.invitation_expires_at > now()))
  WHEN 'CONCURRENT' THEN (SELECT count(*) FROM license_sessions l
                          WHERE l.subscription_id = s.id AND l.ended_at IS NULL AND l.expires_at > now())
  ELSE (SELECT count(*) FROM client_users cu WHERE cu.firm_id = s.master_firm_id) END"""

DASHBOARD = f"""
SELECT json_build_object('data', json_build_object('firm', (
  SELECT json_build_object('id', {gid('Firm', 'f.id')}, 'name', f.name, 'agreements', json_build_object('edges',
    coalesce((SELECT json_agg(json_build_object('node', json_build_object(
        'id', {gid('Agreement', 'a.id')}, 'name', a.name,
        'subscription', (SELECT json_build_object('id', {gid('LicenseSubscription', 's.id')}, 'seats',
            (SELECT json_agg(json_build_object('licenseType', p.license_type, 'purchased', p.purchased,
                                               'inUse', {IN_USE})
                             ORDER BY array_position(ARRAY['NAMED', 'CONCURRENT', 'CLIENT_USER'], p.license_type::text))
             FROM seat_pools p WHERE p.subscription_id = s.id))
          FROM subscriptions s WHERE s.agreement_id = a.id),
        'companies', json_build_object('edges', coalesce((
          SELECT json_agg(json_build_object('node', json_build_object('id', {gid('Company', 'c.id')}, 'name', c.name))
                          ORDER BY c.id)
          FROM (SELECT id, name FROM companies c WHERE c.agreement_id = a.id AND c.archived_at IS NULL
                ORDER BY id LIMIT 20) c), '[]'))
      )) ORDER BY a.id)
      FROM (SELECT id, name FROM agreements a WHERE a.firm_id = f.id AND a.archived_at IS NULL ORDER BY id LIMIT 50) a),
    '[]')))
  FROM firms f WHERE f.id = $1)))::text
"""

MEMBERS = f"""
SELECT json_build_object('data', json_build_object('company', (
  SELECT json_build_object('id', {gid('Company', 'c.id')}, 'name', c.name, 'members', json_build_object('edges',
    coalesce((SELECT json_agg(json_build_object('node', json_build_object(
        'id', {gid('Membership', 'm.id')}, 'role', m.role,
        'user', json_build_object('id', {gid('User', 'u.id')}, 'name', u.name, 'email', u.email))) ORDER BY m.id)
      FROM (SELECT id, role, user_id FROM memberships m WHERE m.company_id = c.id ORDER BY id LIMIT 100) m
      JOIN users u ON u.id = m.user_id), '[]')))
  FROM companies c WHERE c.id = $1)))::text
"""

NODE = f"""
SELECT json_build_object('data', json_build_object('node', (
  SELECT json_build_object('id', {gid('Company', 'c.id')}, 'name', c.name) FROM companies c WHERE c.id = $1)))::text
"""

COMPANY_PAGE = f"""
SELECT json_build_object('data', json_build_object('firm', json_build_object('companies', json_build_object(
  'totalCount', (SELECT count(*) FROM companies c WHERE c.firm_id = $1 AND c.archived_at IS NULL),
  'edges', coalesce((SELECT json_agg(json_build_object('node', json_build_object(
      'id', {gid('Company', 'c.id')}, 'name', c.name)) ORDER BY c.id)
    FROM (SELECT id, name FROM companies c WHERE c.firm_id = $1 AND c.archived_at IS NULL ORDER BY id LIMIT 100) c),
    '[]')))))::text
"""

# operation name -> (statement, the variable holding the one global ID it reads)
STATEMENTS: dict[str, tuple[str, str]] = {
    "Dashboard": (DASHBOARD, "firm"),
    "Members": (MEMBERS, "company"),
    "Node": (NODE, "id"),
    "CompanyPage": (COMPANY_PAGE, "firm"),
}


async def _keep(connection: asyncpg.Connection) -> None:
    """The pool's reset hook: the floor leaves no session state behind to reset."""


class Floor:
    """A bare ASGI app: POST a workload's GraphQL body, get its answer from one statement."""

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
                    # No reset query on release: each request is its one statement and nothing else.
                    self.pool = await asyncpg.create_pool(url, min_size=4, max_size=10, reset=_keep)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.pool is not None:
                        await self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        name = request["operationName"]
        pk = ids.decode(request["variables"][STATEMENTS[name][1]])[1]
        answer = await self.answer(name, pk)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    async def answer(self, operation: str, pk: int) -> bytes:
        assert self.pool is not None
        text: str = await self.pool.fetchval(STATEMENTS[operation][0], pk)
        return text.encode()


class Ceiling(Floor):
    """The floor's answers kept in memory after their first request: what uvicorn itself serves with
    no statement at all. No Python server behind uvicorn answers faster, so a response cache's hit
    can only come near it."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[str, int], bytes] = {}

    async def answer(self, operation: str, pk: int) -> bytes:
        key = operation, pk
        if key not in self.answers:
            self.answers[key] = await super().answer(operation, pk)
        return self.answers[key]


app = Floor()
ceiling = Ceiling()
