"""R76: each distinct document is parsed and validated once per process, not once per request.

A checked document (its AST, the errors of its validation, the scopes it needs, the fields the
email gate closes) depends only on the query text, the validation rules and the parse options
(the token limit), which the settings fix per process (schema.limits, schema.input_checks,
BUREAU_INTROSPECTION). So the entry is keyed by all three and kept in an LRU bounded twice:
BUREAU_DOCUMENT_CACHE_SIZE documents (0 keeps none) and BUREAU_DOCUMENT_CACHE_TEXT characters of
query text in all, since a document's tree takes 70 to 100 times the memory of its text (a
hostile caller sending large distinct documents fills only that much).
What depends on the request is still decided per request: the variables (schema.input_checks,
schema.cost), the caller's scopes and email (schema.scopes), the budget (schema.cost).
Documents that do not parse are not kept: strawberry parses them again and says why.
"""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema
from strawberry.schema.schema import validate_document

from schema.email_gate import closed_fields

Rules = tuple[type[ASTValidationRule], ...]
Options = tuple[tuple[str, Any], ...]  # graphql-core's parse options (max_tokens), sorted


@dataclass(frozen=True)
class Needs:
    """What the scope check reads from a valid document (schema.scopes.required_scopes)."""

    scopes: frozenset[str]
    unclassified: tuple[str, ...]
    beyond_introspection: bool


@dataclass
class Checked:
    document: DocumentNode
    errors: tuple[GraphQLError, ...]  # of validation; none when the document is valid
    needs: Needs | None  # for a valid document
    _closed: tuple[str, ...] | None = field(default=None, repr=False)

    def closed_fields(self, schema: GraphQLSchema) -> tuple[str, ...]:
        """The fields the email gate closes (schema.email_gate), found the first time it is asked."""
        if self._closed is None:
            self._closed = tuple(closed_fields(schema, self.document))
        return self._closed

    def refusals(self) -> list[GraphQLError]:
        """The validation errors, as new objects: the error classifier writes into the ones it gets."""
        return [GraphQLError(e.message, e.nodes, e.source, e.positions, e.path, e.original_error, e.extensions)
                for e in self.errors]


class DocumentCache:
    """A least-recently-used map from (query text, rules, parse options) to the checked document."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, Rules, Options], Checked] = OrderedDict()
        self._text = 0  # characters of query text kept
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, query: str, rules: Rules, options: Options = ()) -> Checked | None:
        entry = self._entries.get((query, rules, options))
        if entry is not None:
            self._entries.move_to_end((query, rules, options))
            self.hits += 1
        return entry

    def check(self, schema: GraphQLSchema, query: str, document: DocumentNode, rules: Rules, options: Options = (),
              *, size: int, text_size: int, needs: Callable[[DocumentNode], Needs]) -> Checked:
        """Validates a document just parsed and keeps the outcome, the least recently used making way
        so that at most `size` documents of `text_size` characters in all stay."""
        self.misses += 1
        errors = tuple(validate_document(schema, document, rules))
        entry = Checked(document, errors, None if errors else needs(document))
        key = (query, rules, options)
        if 0 < size and len(query) <= text_size and key not in self._entries:
            self._entries[key] = entry
            self._text += len(query)
            while len(self._entries) > size or self._text > text_size:
                (evicted, _, _), _ = self._entries.popitem(last=False)
                self._text -= len(evicted)
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self._text = 0


DOCUMENTS = DocumentCache()  # one per process, as the schema is
