"""The benchmark's workloads (issue 13): what a partner dashboard asks for, many times a minute.

Each is a GraphQL document, its variables from the dataset's manifest, and whose token sends it.
"""

from dataclasses import dataclass
from typing import Any

from models import ids

DASHBOARD = """query Dashboard($firm: ID!) {
  firm(id: $firm) {
    id
    name
    agreements(first: 50) {
      edges {
        node {
          id
          name
          subscription { id seats { licenseType purchased inUse } }
          companies(first: 20) { edges { node { id name } } }
        }
      }
    }
  }
}"""

MEMBERS = """query Members($company: ID!) {
  company(id: $company) {
    id
    name
    members(first: 100) { edges { node { id role user { id name email } } } }
  }
}"""

NODE = """query Node($id: ID!) {
  node(id: $id) { id ... on Company { name } }
}"""

COMPANY_PAGE = """query CompanyPage($firm: ID!) {
  firm(id: $firm) {
    companies(first: 100) { totalCount edges { node { id name } } }
  }
}"""

CHANGE_SEATS = """mutation ChangeSeats($input: ChangeSeatsInput!) {
  changeSeats(input: $input) { subscription { id } userErrors { code message } }
}"""

INVITE = """mutation Invite($input: InviteUserInput!) {
  inviteUser(input: $input) { membership { id } userErrors { code message } }
}"""


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    query: str
    operation: str
    firm: str  # the manifest's firm key whose admin sends it

    def variables(self, manifest: dict[str, Any]) -> dict[str, Any]:
        objects, firms = manifest["objects"], manifest["firms"]
        match self.key:
            case "a":
                return {"firm": firms["big"]}
            case "a-big":
                return {"firm": firms["mid"]}
            case "b":
                return {"company": objects["crowded_company"]}
            case "c":
                return {"id": objects["company"]}
            case "d":
                return {"firm": firms["big"]}
        raise KeyError(self.key)

    def body(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return {"query": self.query, "operationName": self.operation, "variables": self.variables(manifest)}


READS = [
    Workload("a", "firm dashboard: 50 agreements, seat pools, their companies", DASHBOARD, "Dashboard", "big"),
    Workload("a-big", "the dashboard with 1,000 companies in the answer", DASHBOARD, "Dashboard", "mid"),
    Workload("b", "one company, 100 members with their users", MEMBERS, "Members", "mid"),
    Workload("c", "node(id) of a company", NODE, "Node", "big"),
    Workload("d", "a page of 100 companies with totalCount", COMPANY_PAGE, "CompanyPage", "big"),
]
BY_KEY = {w.key: w for w in READS}


# The same workloads in PostGraphile's schemas, aliased to bureau's field names: connections
# ordered by primary key as bureau's are, seat pools NAMED, CONCURRENT, CLIENT_USER (the
# descending order of their names). `to_bureau` then only has to turn row ids into global IDs.
POSTGRAPHILE_4 = {
    "Dashboard": """query Dashboard($firm: BigInt!) {
  firm: firmById(id: $firm) {
    id
    name
    agreements: agreementsByFirmId(first: 50, orderBy: ID_ASC) {
      edges {
        node {
          id
          name
          subscription: subscriptionByAgreementId {
            id
            seats: seatPoolsBySubscriptionIdList(orderBy: LICENSE_TYPE_DESC) { licenseType purchased inUse }
          }
          companies: companiesByAgreementId(first: 20, orderBy: ID_ASC) { edges { node { id name } } }
        }
      }
    }
  }
}""",
    "Members": """query Members($company: BigInt!) {
  company: companyById(id: $company) {
    id
    name
    members: membershipsByCompanyId(first: 100, orderBy: ID_ASC) {
      edges { node { id role user: userByUserId { id name email } } }
    }
  }
}""",
    "Node": """query Node($id: ID!) {
  node(nodeId: $id) { ... on Company { id name } }
}""",
    "CompanyPage": """query CompanyPage($firm: BigInt!) {
  firm: firmById(id: $firm) {
    companies: companiesByFirmId(first: 100, orderBy: ID_ASC) { totalCount edges { node { id name } } }
  }
}""",
}

# PostGraphile 5 (the Amber preset) calls the column `rowId`, keeps `id` for its node ID, and
# knows the licence subscriptions by their tags-file name.
POSTGRAPHILE_5 = {
    "Dashboard": """query Dashboard($firm: BigInt!) {
  firm: firmByRowId(rowId: $firm) {
    id: rowId
    name
    agreements: agreementsByFirmId(first: 50, orderBy: ROW_ID_ASC) {
      edges {
        node {
          id: rowId
          name
          subscription: licenseSubscriptionByAgreementId {
            id: rowId
            seats: seatPoolsBySubscriptionId(orderBy: LICENSE_TYPE_DESC) { nodes { licenseType purchased inUse } }
          }
          companies: companiesByAgreementId(first: 20, orderBy: ROW_ID_ASC) { edges { node { id: rowId name } } }
        }
      }
    }
  }
}""",
    "Members": """query Members($company: BigInt!) {
  company: companyByRowId(rowId: $company) {
    id: rowId
    name
    members: membershipsByCompanyId(first: 100, orderBy: ROW_ID_ASC) {
      edges { node { id: rowId role user: userByUserId { id: rowId name email } } }
    }
  }
}""",
    "Node": """query Node($id: ID!) {
  node(id: $id) { ... on Company { id: rowId name } }
}""",
    "CompanyPage": """query CompanyPage($firm: BigInt!) {
  firm: firmByRowId(rowId: $firm) {
    companies: companiesByFirmId(first: 100, orderBy: ROW_ID_ASC) { totalCount edges { node { id: rowId name } } }
  }
}""",
}

# Which type an object's `id` belongs to, by the field that holds the object (or its connection).
ID_TYPES = {"firm": "Firm", "agreements": "Agreement", "subscription": "LicenseSubscription",
            "companies": "Company", "company": "Company", "members": "Membership", "user": "User",
            "node": "Company"}


def to_bureau(value: Any, kind: str | None = None) -> Any:
    """A PostGraphile answer in bureau's form: row ids as global IDs, `nodes` lists as lists."""
    if isinstance(value, list):
        return [to_bureau(item, kind) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "id" and kind is not None:
            out[key] = ids.encode(kind, int(item))
        elif key in ("edges", "node") and kind is not None and isinstance(item, (list, dict)):
            out[key] = to_bureau(item, kind)  # a connection's objects are its field's type
        elif isinstance(item, dict) and set(item) == {"nodes"}:
            out[key] = to_bureau(item["nodes"], ID_TYPES.get(key))
        else:
            out[key] = to_bureau(item, ID_TYPES.get(key))
    return out
