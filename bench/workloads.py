"""The benchmark's workloads (issue 13): what a partner dashboard asks for, many times a minute.

Each is a GraphQL document, its variables from the dataset's manifest, and whose token sends it.
"""

from dataclasses import dataclass
from typing import Any

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
